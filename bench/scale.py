"""Scale on CPU: the 2D image cache against the dataset's size, parallel decoding, and training in one process against two (gloo).

Data: ../shared/data/chest_xray_224/train (5,216 radiographs). Larger datasets are made by repetition: each image linked under
k names (distinct paths, so every copy is decoded and cached as its own image), k = 1..16.

(a) Cache against dataset size (--sizes, default 1,4,16). In a fresh process per size and cache: `image_dls` of the 'xray_quick'
    recipe (64 px grey items, oversampling), `preload` with two decode processes, then one pass over the training loader (batches
    of 64, augmentation on, no model): the data path alone. Peak resident set above the process's before the first image (the
    largest of /proc/self/statm sampled after each batch and ru_maxrss, mapped file pages included), and images per second of the
    pass. 'memory' keeps the decoded images in a dict; 'disk' in one memory-mapped file (built once per size; the pass reads it).
(b) Decoding: `preload` into memory with 1 and with 2 decode processes, alternating, best of two: the 5,216 radiographs (224 px
    JPEG, to 64 px), and the RSNA radiograph of ../shared/data/dicom_misc (a 1024x1024 JPEG-compressed DICOM) linked under 200 names
    (to 256 px): cheap images against costly ones.
(c) One process against two (--parts ddp): `medfast train --folder ... --recipe xray_quick --epochs 2` alone and with
    `--processes 2` (gloo, batch 64 per process, so the 2-process run takes half the optimizer steps per epoch with twice the
    batch). Seconds per epoch and the validation figures of the patient split. On 2 cores two processes cannot be faster: the
    point is that the distributed path runs end to end and what it costs.

Run: `python bench/scale.py [--parts cache,decode,ddp] [--sizes 1,4,16]`.
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time, warnings, shutil
from pathlib import Path
warnings.filterwarnings('ignore')

ap = argparse.ArgumentParser()
ap.add_argument('--parts', default='cache,decode,ddp')
ap.add_argument('--sizes', default='1,4,16')
ap.add_argument('--json', default=None)
ap.add_argument('--child', nargs=3, default=None, help=argparse.SUPPRESS)   # internal: MODE FOLDER CACHE_DIR
args = ap.parse_args()
def log(*a): print(*a, file=sys.stderr, flush=True)

def rss() -> int: return int(open('/proc/self/statm').read().split()[1])*os.sysconf('SC_PAGE_SIZE')

def child(mode, folder, cdir):
    "One measurement in this fresh process: the data path of one epoch, and its peak resident set"
    os.environ['MEDFAST_CACHE'] = cdir
    from medfast.data.tables import items_from_folder, split_by_patient
    from medfast.data.images import image_dls
    from medfast.engine.params import get_recipe
    r = get_recipe('xray_quick').params.to_dict()
    t = split_by_patient(items_from_folder(folder, preset='chest_xray'), valid_pct=0.15, seed=42)
    base, peak = rss(), 0
    t0 = time.perf_counter()
    dls = image_dls(t, size=r['size'], bs=r['bs'], channels=r['channels'], sampling=r['sampling'], cache=mode, normalize=False)
    pre = time.perf_counter() - t0
    n, t0 = 0, time.perf_counter()
    for xb, yb in dls.train: n += len(xb); peak = max(peak, rss())
    dt = time.perf_counter() - t0
    peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss*1024)
    return dict(images=len(t), rss_mb=round((peak - base)/2**20, 1), preload_s=round(pre, 1), epoch_img_s=round(n/dt, 1))

if args.child:
    print(json.dumps(child(*args.child))); sys.exit(0)

import numpy as np
from results import save
from medfast.core import data_dir
src = data_dir()/'chest_xray_224'/'train'
if not src.is_dir(): sys.exit(f"SKIPPED (data absent): {src}")
parts, out, tmp = args.parts.split(','), {}, Path(tempfile.mkdtemp())

def repeated(k:int) -> Path:
    "The chest set with each image under k names"
    d = tmp/f'x{k}'
    if d.exists(): return d
    for c in ('NORMAL', 'PNEUMONIA'):
        (d/c).mkdir(parents=True)
        for f in sorted((src/c).iterdir()):
            for j in range(k): (d/c/(f.stem + (f'-r{j}' if j else '') + f.suffix)).symlink_to(f)
    return d

if 'cache' in parts:
    rows = []
    for k in map(int, args.sizes.split(',')):
        folder = repeated(k)
        for mode in ('memory', 'disk'):
            r = subprocess.run([sys.executable, __file__, '--child', mode, str(folder), str(tmp/'cache')], capture_output=True, text=True)
            if r.returncode: sys.exit(f"child {mode} x{k} failed:\n{r.stderr[-2000:]}")
            rows.append(dict(copies=k, cache=mode, **json.loads(r.stdout.strip().splitlines()[-1]))); log(rows[-1])
    out['cache'] = rows
    print("\n(a) the data path of one training epoch (64 px grey, oversampled, batches of 64, no model) against dataset size")
    print("| images | cache | preload (s) | peak RSS above start (MB) | images/s |\n|---|---|---|---|---|")
    for r in rows: print(f"| {r['images']:,} | {r['cache']} | {r['preload_s']} | {r['rss_mb']} | {r['epoch_img_s']} |")

if 'decode' in parts:
    from medfast.data.images import LoadImage
    from medfast.data.tables import items_from_folder
    sets = [('chest JPEG 224 px', items_from_folder(src)['item'].tolist(), 64)]
    dcm = data_dir()/'dicom_misc'/'rsna_pneumonia_c64d5667.dcm'
    if dcm.is_file():
        (tmp/'dcm').mkdir(exist_ok=True)
        for j in range(200): (tmp/'dcm'/f'r{j}.dcm').symlink_to(dcm)
        sets.append(('RSNA DICOM 1024 px, JPEG', sorted(str(p) for p in (tmp/'dcm').iterdir()), 256))
    out['decode'] = []
    for name, items, size in sets:
        times = {1: [], 2: []}
        for _ in range(2):
            for n in (1, 2):
                ld = LoadImage(size=size, channels=1, cache='memory', n_workers=0 if n == 1 else n)
                t0 = time.perf_counter(); ld.preload(items); times[n].append(time.perf_counter() - t0)
        out['decode'].append(dict(images=name, n=len(items), one_s=round(min(times[1]), 2), two_s=round(min(times[2]), 2), speedup=round(min(times[1])/min(times[2]), 2)))
    print("\n(b) preload into memory with 1 and 2 decode processes (best of two)\n| images | count | 1 process (s) | 2 processes (s) | speed-up |\n|---|---|---|---|---|")
    for d in out['decode']: print(f"| {d['images']} | {d['n']:,} | {d['one_s']} | {d['two_s']} | {d['speedup']}x |")

if 'ddp' in parts:
    rows = []
    exe = Path(sys.executable).parent/'medfast'
    for procs in (1, 2):
        cmd = [str(exe), 'train', '--folder', str(src), '--preset', 'chest_xray', '--recipe', 'xray_quick', '--epochs', '2', '--run', str(tmp/f'run{procs}')]
        if procs > 1: cmd += ['--processes', str(procs)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'MEDFAST_CACHE': str(tmp/'cache')})
        if r.returncode: sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        spec = json.loads((tmp/f'run{procs}'/'model.json').read_text()); h = spec['history'][-1]
        rows.append(dict(processes=procs, wall_s=round(time.perf_counter() - t0, 1), epoch_s=round(h['seconds']/h['epochs'], 1),
                         shards=h.get('shards', [None])[-1], **{k: round(res[k], 4) for k in ('accuracy', 'auroc', 'sensitivity', 'specificity')}))
        log(rows[-1])
    rows[1]['epoch_ratio'] = round(rows[1]['epoch_s']/rows[0]['epoch_s'], 2)
    out['ddp'] = rows
    print("\n(c) 'xray_quick' for 2 epochs on the 5,216 radiographs: one process against two gloo processes on this machine")
    print("| processes | s / epoch | vs one | wall (s) | accuracy | AUROC | sensitivity | specificity |\n|---|---|---|---|---|---|---|---|")
    for r in rows: print(f"| {r['processes']} | {r['epoch_s']} | {r.get('epoch_ratio', 1.0)} | {r['wall_s']} | {r['accuracy']} | {r['auroc']} | {r['sensitivity']} | {r['specificity']} |")

shutil.rmtree(tmp, ignore_errors=True)
save('scale', out, args, args.json)
