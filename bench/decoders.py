"""Which pydicom decoder plugins decode which compressed files: the measurement behind medfast's decoder dependencies.

For every compressed file in pydicom's bundled test data (and the RSNA radiograph in ../shared/data when present), try
each installed plugin alone and count the files it decodes. Run: `python bench/decoders.py`.
A plugin whose package is not installed shows as 'missing': `pip install python-gdcm` (not a medfast dependency) to
include GDCM. Measured with it installed: pylibjpeg family 38 of 40 files, gdcm 28, and no file that only gdcm decodes.
"""
import os, sys, warnings, time
from pathlib import Path
import pydicom, pydicom.data
from pydicom import dcmread
from pydicom.pixels import get_decoder

warnings.simplefilter('ignore')
from results import save

def files():
    d = Path(pydicom.data.get_testdata_file('CT_small.dcm')).parent
    fs = sorted(p for p in d.iterdir() if p.suffix == '.dcm')
    sd = Path(os.environ.get('MEDFAST_DATA', Path(__file__).resolve().parents[1].parent/'shared'/'data'))
    rsna = sd/'dicom_misc'/'rsna_pneumonia_c64d5667.dcm'
    return fs + ([rsna] if rsna.exists() else [])

def main():
    rows, plugins = [], ['pydicom', 'pylibjpeg', 'gdcm', 'pillow', 'pyjpegls']   # 'pydicom': its own RLE decoder
    for f in files():
        try: ds = dcmread(f)
        except Exception: continue
        ts = ds.file_meta.get('TransferSyntaxUID')
        if ts is None or not ts.is_compressed or 'PixelData' not in ds: continue
        dec = get_decoder(ts)
        res = {}
        for p in plugins:
            if p in dec._unavailable: res[p] = 'missing'; continue   # plugin exists for this syntax, dependency absent
            if p not in dec._available: res[p] = '-'; continue        # plugin does not handle this syntax
            try: dec.as_array(ds, decoding_plugin=p); res[p] = 'ok'
            except (KeyboardInterrupt, SystemExit): raise
            except BaseException: res[p] = 'fail'   # includes Rust panics
        rows.append((f.name, ts.name, res))
    w = max(len(r[0]) for r in rows)
    print(f"{'file':{w}s}  {'transfer syntax':38s} " + ' '.join(f'{p:>9s}' for p in plugins))
    for n, ts, res in rows: print(f"{n:{w}s}  {ts[:38]:38s} " + ' '.join(f'{res[p]:>9s}' for p in plugins))
    tot = {p: sum(r[2][p] == 'ok' for r in rows) for p in plugins}
    anyok = sum(any(v == 'ok' for v in r[2].values()) for r in rows)
    pl = sum(r[2]['pylibjpeg'] == 'ok' or r[2]['pydicom'] == 'ok' for r in rows)
    print(f"\ncompressed files: {len(rows)}; decoded by: " + ', '.join(f'{p} {tot[p]}' for p in plugins))
    print(f"pylibjpeg family (+ pydicom's own RLE): {pl}; gdcm alone: {tot['gdcm']}; any installed plugin: {anyok}")
    save('decoders', dict(files=[dict(file=n, syntax=ts, **res) for n, ts, res in rows], decoded=tot, pylibjpeg_family=pl, any_plugin=anyok))

if __name__ == '__main__': main()
