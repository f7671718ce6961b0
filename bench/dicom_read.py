"""Images per second: medfast `read_dicom` against raw pydicom and fastai.medical.imaging, on the same files in one run.

Files: pydicom's CT_small and MR_small, the RSNA JPEG Baseline radiograph from ../shared/data (when present), and a
2048x2048 16-bit uncompressed radiograph written with pydicom (12 bits stored, rescale and window in the header, the
RSNA image upsampled when present so the content is real). Its header window (2048/4096) spans the whole 12-bit range, a
common default, which lets medfast skip the [0, 1] clip; an extra row uses the same image with a narrow window (1800/1200)
that saturates pixels, to show the cost of the clip.

Methods, each reading the file from disk every time:
  pydicom raw         dcmread(f).pixel_array                  (decoded stored values, no LUTs)
  medfast             read_dicom(f)                           (float32, modality LUT + header VOI + MONOCHROME1)
  medfast voi=None    read_dicom(f, voi=None)                 (float32, modality LUT only: HU)
  fastai scaled_px    fastai.medical.imaging Path(f).dcmread().scaled_px
  fastai windowed     fastai.medical.imaging Path(f).dcmread().windowed(1500, -600)

Rounds are interleaved (every method runs once per round on every file) so machine noise hits all methods alike;
the table reports the median time per image. Run: `python bench/dicom_read.py [--rounds N]`.
"""
import argparse, os, tempfile, time, warnings
from pathlib import Path
import numpy as np
import pydicom, pydicom.data
from pydicom import dcmread

warnings.simplefilter('ignore')
from results import save
from medfast.io.dicom import read_dicom, array_to_dicom
from medfast.core import data_dir
import fastai.medical.imaging as fmi   # patches pydicom's Dataset with scaled_px / windowed

def radiograph_2048(dest, center=2048, width=4096):
    "A 2048x2048, 12-bit stored, uncompressed DX-like file: the RSNA image upsampled (or a smooth phantom), rescale + window"
    try:
        src = read_dicom(data_dir()/'dicom_misc'/'rsna_pneumonia_c64d5667.dcm', voi=None)
        img = np.kron(np.asarray(src), np.ones((2, 2), np.float32))
        img = img / max(float(img.max()), 1) * 4000
    except Exception:
        y,x = np.mgrid[:2048, :2048] / 2048
        img = 2000 + 1500*np.sin(6*x)*np.cos(4*y)
    img = img + np.random.default_rng(0).normal(0, 20, img.shape)
    px = np.clip(img, 0, 4095).astype(np.uint16)
    return array_to_dicom(px, dest, bits_stored=12, Modality='DX', RescaleSlope=1, RescaleIntercept=0,
                          WindowCenter=center, WindowWidth=width)

METHODS = {
    'pydicom raw': lambda f: dcmread(f).pixel_array,
    'medfast': lambda f: read_dicom(f),
    'medfast voi=None': lambda f: read_dicom(f, voi=None),
    'fastai scaled_px': lambda f: Path(f).dcmread().scaled_px,
    'fastai windowed': lambda f: Path(f).dcmread().windowed(1500, -600),
}

def main(args):
    rounds, rows = args.rounds, []
    tmp = tempfile.mkdtemp()
    files = {'CT_small 128x128 int16': Path(pydicom.data.get_testdata_file('CT_small.dcm')),
             'MR_small 64x64 int16': Path(pydicom.data.get_testdata_file('MR_small.dcm'))}
    rsna = data_dir()/'dicom_misc'/'rsna_pneumonia_c64d5667.dcm'
    if rsna.exists(): files['RSNA 1024x1024 JPEG'] = rsna
    else: print(f"(RSNA radiograph absent at {rsna}: row skipped)")
    files['DX 2048x2048 uint16 12-bit'] = radiograph_2048(Path(tmp)/'dx2048.dcm')
    # the same image with a narrow window that saturates pixels, so the [0, 1] clip cannot be skipped
    files['DX 2048 narrow window (extra)'] = radiograph_2048(Path(tmp)/'dx2048_narrow.dcm', center=1800, width=1200)
    times = {(fk, m): [] for fk in files for m in METHODS}
    for fk,f in files.items():        # warm up: page cache, imports, decoder plugins
        for fn in METHODS.values(): fn(f)
    # batch enough calls per timing that each measures at least ~20 ms
    reps = {fk: max(1, int(0.02 / max(1e-5, _once(METHODS['pydicom raw'], f)))) for fk,f in files.items()}
    for _ in range(rounds):
        for fk,f in files.items():
            for m,fn in METHODS.items():
                t0 = time.perf_counter()
                for _ in range(reps[fk]): fn(f)
                times[fk, m].append((time.perf_counter() - t0) / reps[fk])
    print(f"\nread_dicom benchmark: median of {rounds} interleaved rounds, one process, {os.cpu_count()} CPUs\n")
    hdr = f"| {'file':30s} | {'method':18s} | {'ms/image':>9s} | {'images/s':>9s} | {'vs pydicom raw':>14s} | {'medfast is faster by':>20s} |"
    print(hdr); print('|' + '|'.join('-'*(len(c)) for c in hdr.split('|')[1:-1]) + '|')
    for fk in files:
        base = np.median(times[fk, 'pydicom raw'])
        ours = np.median(times[fk, 'medfast'])
        for m in METHODS:
            t = np.median(times[fk, m])
            faster = f"{t/ours:.2f}x" if m.startswith('fastai') else ''
            print(f"| {fk:30s} | {m:18s} | {t*1e3:9.3f} | {1/t:9.0f} | {t/base:13.2f}x | {faster:>20s} |")
            rows.append(dict(file=fk, method=m, ms=round(t*1e3, 4), vs_pydicom=round(t/base, 3), vs_medfast=round(t/ours, 3)))
    save('dicom_read', rows, args)

def _once(fn, f, n=5):
    t0 = time.perf_counter()
    for _ in range(n): fn(f)
    return (time.perf_counter() - t0) / n

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--rounds', type=int, default=30)
    main(ap.parse_args())
