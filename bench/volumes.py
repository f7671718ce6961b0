"""3D volumes on CPU: series loading versus the float16 cache, the fastai learner versus a plain PyTorch loop, and the
AdrenalMNIST3D recipe, side by side in one run.

(a) Loading. One "epoch" reads every real DICOM series under ../shared/data/dicom_series (4 GE runs of 15 slices x 10 time points,
    4 Siemens mosaic runs) and preprocesses it with one VolumePrep (time point 0, background crop, percentile normalization,
    trilinear resize to 32x64x64): straight from the DICOM files (`VolumePrep(src)`), then from a built `VolumeCache` (float16 .npy).
    Best of --repeat epochs each; the cache's disk size against float32 arrays of the same shape.
(b) Training throughput. The same 3D ResNet (the 'medmnist3d' recipe's architecture and size) on the same AdrenalMNIST3D
    training volumes, fp32, batch 16, same augmentation: medfast's fastai Learner (volume_dls + task_learner, one-cycle) against a
    hand-written PyTorch loop over a preloaded tensor (AdamW, one-cycle, the same `volume_aug` transforms, the same 16 validation
    volumes scored at the end of the epoch). Training volumes per second of wall time, measured in alternation (learner, loop, learner, loop) and the best of each kept.
(d) Patches at real size (--parts patches). The four GE series (time point 0) resampled to 64^3, 128^3 and 256^3 voxels (spacing = field
    of view / size), written as NIfTI and cached as float16. 64 training patches of 32^3 (half on the foreground), read from the cache's
    memory map (`LoadVolume(patch=...)`) against loading each whole cached volume and cutting the same patch from it. In a fresh process
    without a model: the largest resident set size (/proc/self/statm, mapped file pages included) while a sample is alive, above the RSS
    before the first volume is read, and patches/s; in another, patches/s with a
    3D ResNet-10 training step on batches of 4.
(c) Recipe. `medfast.engine.learner.train` with the 'medmnist3d' recipe on ../shared/data/medmnist/adrenalmnist3d_64_trainval.npz,
    official split (1,188 train / 98 val); the test split is held out and never read here. Wall time and validation metrics.

Run: `python bench/volumes.py [--parts load,speed,recipe,patches] [--repeat 3] [--speed-n 1188]`.
"""
import argparse, contextlib, json, os, sys, tempfile, time, warnings, shutil
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
warnings.filterwarnings('ignore')

from results import save
from medfast.core import data_dir, seed_everything
from medfast.data.volumes import VolumePrep, VolumeCache
from medfast.data.tables import items_from_npz, split_by_folder
from medfast.models.zoo import create_model
from medfast.engine.params import get_recipe
from medfast.engine.learner import train, task_learner
from medfast.data.volumes import volume_dls
from medfast.transforms.volume import volume_aug, TensorVolume
from medfast.tasks.classify import TASK
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

ap = argparse.ArgumentParser()
ap.add_argument('--parts', default='load,speed,recipe')
ap.add_argument('--repeat', type=int, default=3)
ap.add_argument('--speed-n', type=int, default=1188, help='training volumes per throughput epoch (all of them by default)')
ap.add_argument('--epochs', type=int, default=None, help='override the recipe epochs')
ap.add_argument('--json', default=None)
ap.add_argument('--sizes', default='64,128,256', help='patches: cube sides')
ap.add_argument('--child', nargs=3, default=None, help=argparse.SUPPRESS)   # internal: METHOD SIZE CACHE_DIR, one measurement
args = ap.parse_args()
parts = args.parts.split(',')
def log(*a): print(*a, file=sys.stderr, flush=True)

PATCH, N_PATCH, PBS = (32, 32, 32), 64, 4

def child(method, cache_dir, nii, train_step):
    "One measurement in this fresh process: peak RSS above the RSS before any volume is read (no model: the data path alone), or patches/s with a training step"
    import resource
    from medfast.data.volumes import LoadVolume
    from medfast.data.volumes import patch_start, read_patch
    cache = VolumeCache(cache_dir, VolumePrep(shape=None, crop=False, normalize='minmax'))
    lv = LoadVolume(cache, patch=PATCH, fg_prob=.5)
    page, peak = os.sysconf('SC_PAGE_SIZE'), [0]
    def rss(): return int(open('/proc/self/statm').read().split()[1])*page      # resident now (file pages mapped by this process included)
    def sample(i):
        src = nii[i % len(nii)]
        if method == 'memmap': x = lv(src, split_idx=0).as_subclass(torch.Tensor)
        else:
            a = cache(src)                                             # the whole volume, then the patch
            x = torch.from_numpy(read_patch(a, patch_start(a.shape[1:], PATCH, cache.foreground(src), .5), PATCH))
        if not train_step: peak[0] = max(peak[0], rss())               # while this sample's arrays are alive
        return x
    if not train_step:
        for s_ in nii: cache.foreground(s_)
        base = rss(); t = time.perf_counter()
        for i in range(N_PATCH): x = sample(i)
        dt = time.perf_counter() - t
        return dict(rss_mb=round((peak[0] - base)/2**20, 1), sample_per_s=round(N_PATCH/dt, 1))
    m = create_model('resnet3d_10', 1, n_in=1); opt = torch.optim.AdamW(m.parameters(), 1e-3)
    t = time.perf_counter()
    for i in range(0, N_PATCH, PBS):
        xb = torch.stack([sample(i + j) for j in range(PBS)])
        F.binary_cross_entropy_with_logits(m(xb)[:, 0], torch.zeros(PBS)).backward(); opt.step(); opt.zero_grad()
    return dict(train_per_s=round(N_PATCH/(time.perf_counter() - t), 1))

if args.child:
    method, size, cdir = args.child
    nii = sorted(str(p) for p in Path(cdir).parent.glob(f'v{size}_*.nii.gz'))
    print(json.dumps(child(method.split(':')[0], Path(cdir), nii, method.endswith(':train'))))
    sys.exit(0)

out = {}
R = get_recipe('medmnist3d').params
SHAPE = (R.size,)*3                  # the cube the recipe trains at

if 'load' in parts:
    root = data_dir()/'dicom_series'
    srcs = sorted(p for p in root.glob('*/mr_*') if p.is_dir())
    if not srcs: sys.exit(f"SKIPPED (data absent): {root}")
    prep = VolumePrep(shape=(32, 64, 64))
    tmp = Path(tempfile.mkdtemp())
    cache = VolumeCache(tmp, prep)
    t = time.perf_counter(); cache.build(srcs, n_workers=0, progress=False); build = time.perf_counter() - t
    dicom, cached = [], []
    for _ in range(args.repeat):
        t = time.perf_counter(); a = [prep(s) for s in srcs]; dicom.append(time.perf_counter() - t)
        c2 = VolumeCache(tmp, prep)                     # a fresh object: nothing in memory, every volume from disk
        t = time.perf_counter(); b = [c2(s) for s in srcs]; cached.append(time.perf_counter() - t)
        assert c2.misses == 0
    err = max(float(np.abs(x - y).max()) for x,y in zip(a, b))
    disk = sum(p.stat().st_size for p in tmp.glob('*.npy')); f32 = sum(x.nbytes for x in a)
    n_files = sum(len(list(s.glob('*.dcm'))) for s in srcs)
    out['load'] = dict(series=len(srcs), dicom_files=n_files, dicom_epoch_s=round(min(dicom), 3), cache_epoch_s=round(min(cached), 4),
                       speedup=round(min(dicom)/min(cached), 1), build_s=round(build, 2), cache_bytes=disk, float32_bytes=f32,
                       size_ratio=round(disk/f32, 3), max_abs_error=round(err, 5))
    print("\n(a) loading one epoch of DICOM series (preprocessed to 32x64x64)")
    print(f"| source | series | files | epoch (s) | ratio | bytes |\n|---|---|---|---|---|---|")
    print(f"| DICOM files + VolumePrep | {len(srcs)} | {n_files} | {min(dicom):.3f} | 1.0 | {f32} (float32 arrays) |")
    print(f"| VolumeCache (float16 .npy) | {len(srcs)} | {len(srcs)} | {min(cached):.4f} | {min(dicom)/min(cached):.0f}x faster | {disk} ({disk/f32:.2f} of float32) |")
    print(f"cache build (once): {build:.2f} s; largest float16 rounding error {err:.1e} on [0, 1] volumes")
    shutil.rmtree(tmp)

npz = data_dir()/'medmnist'/'adrenalmnist3d_64_trainval.npz'
if ('speed' in parts or 'recipe' in parts) and not npz.is_file(): sys.exit(f"SKIPPED (data absent): {npz}")
df = split_by_folder(items_from_npz(npz, ('train', 'val')), valid='val') if npz.is_file() else None

if 'speed' in parts:
    torch.set_num_threads(torch.get_num_threads())
    tr = df[~df.is_valid].iloc[:args.speed_n]; va = df[df.is_valid].iloc[:16]
    sub = __import__('pandas').concat([tr, va])
    prep = VolumePrep(shape=SHAPE, crop=False, normalize='minmax')
    aug = dict(R.aug)
    dls = volume_dls(sub, prep, None, bs=R.bs, aug=aug, vocab=[0, 1])
    X = torch.stack([torch.from_numpy(prep(i)) for i in tr['item']]); Y = torch.tensor(tr.label.values, dtype=torch.float32)
    XV = torch.stack([torch.from_numpy(prep(i)) for i in va['item']])
    tfms = volume_aug(**aug)                              # the very transforms the learner's DataLoaders apply
    def learner_epoch():
        seed_everything(0); learn = task_learner(dls, TASK, R)
        t = time.perf_counter(); learn.fit_one_cycle(1, R.lr); dt = time.perf_counter() - t
        return len(dls.train_ds)//R.bs*R.bs/dt
    def loop_epoch():
        seed_everything(0); m = create_model(R.arch, 1, n_in=1); bs = R.bs; steps = len(X)//bs
        opt = torch.optim.AdamW(m.parameters(), lr=R.lr, weight_decay=0.01)
        sch = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=R.lr, total_steps=steps)
        m.train(); perm = torch.randperm(len(X)); t = time.perf_counter()
        for i in range(steps):
            idx = perm[i*bs:(i+1)*bs]; xb = TensorVolume(X[idx])
            for f in tfms: xb = f(xb, split_idx=0)
            loss = F.binary_cross_entropy_with_logits(m(xb.as_subclass(torch.Tensor))[:, 0], Y[idx])
            opt.zero_grad(); loss.backward(); opt.step(); sch.step()
        m.eval()
        with torch.no_grad(): torch.sigmoid(m(XV)[:, 0])              # the learner validates too: same work on both sides
        return steps*bs/(time.perf_counter() - t)
    with contextlib.redirect_stdout(sys.stderr):
        ls, ps = [], []
        for _ in range(2): ls.append(learner_epoch()); ps.append(loop_epoch())
    out['speed'] = dict(arch=R.arch, shape=list(SHAPE), learner_vol_s=round(max(ls), 2), loop_vol_s=round(max(ps), 2), ratio=round(max(ls)/max(ps), 3))
    print(f"\n(b) training throughput, {R.arch} at {'x'.join(map(str, SHAPE))}, fp32, batch {R.bs}, {len(tr)} volumes per epoch")
    print("| loop | volumes/s | ratio |\n|---|---|---|")
    print(f"| plain PyTorch loop | {max(ps):.2f} | 1.00 |\n| medfast fastai Learner | {max(ls):.2f} | {max(ls)/max(ps):.2f} |")

if 'recipe' in parts:
    t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr): learn = train(df, 'medmnist3d', epochs=args.epochs)
    sec = time.perf_counter() - t
    r = learn.run_record.params.to_dict(); r['shape'] = (r['size'],)*3
    m = learn.run_record.valid
    out['recipe'] = dict(recipe=r, seconds=round(sec, 1), **{k: round(float(m[k]), 4) for k in ('accuracy', 'auroc', 'sensitivity', 'specificity', 'balanced_accuracy')})
    print(f"\n(c) AdrenalMNIST3D 64^3, official split, {r['arch']} at {'x'.join(map(str, r['shape']))}, {r['epochs']} epochs, fp32 CPU")
    print("| train time | val AUROC | val accuracy | sensitivity | specificity | balanced accuracy |\n|---|---|---|---|---|---|")
    print(f"| {sec/60:.1f} min | {m['auroc']:.3f} | {m['accuracy']:.3f} | {m['sensitivity']:.3f} | {m['specificity']:.3f} | {m['balanced_accuracy']:.3f} |")
    print("MedMNIST v2's best published test AUROC on AdrenalMNIST3D: 0.828 (28^3). The test split is held out.")


if 'patches' in parts:
    import subprocess
    from medfast.io.series import load_series
    from medfast.io.nifti import save_volume
    from medfast.transforms.spatial import resample_volume
    root = data_dir()/'dicom_series'/'ge_epi_brain'
    srcs = sorted(p for p in root.glob('mr_*') if p.is_dir())
    if not srcs: sys.exit(f"SKIPPED (data absent): {root}")
    tmp = Path(tempfile.mkdtemp()); rows = []
    vols = [load_series(s)[0] for s in srcs]
    for n in map(int, args.sizes.split(',')):
        for i, v in enumerate(vols):
            fov = np.array(v.shape)*np.array(v.spacing)
            save_volume(resample_volume(v, fov/n), tmp/f'v{n}_{i}.nii.gz')
        nii = sorted(tmp.glob(f'v{n}_*.nii.gz')); cdir = tmp/f'cache{n}'
        c = VolumeCache(cdir, VolumePrep(shape=None, crop=False, normalize='minmax')); c.build(nii, n_workers=0, progress=False)
        for s_ in nii: c.foreground(s_)
        mb = sum(p.stat().st_size for p in cdir.glob('*.npy') if '.fg' not in p.name)/len(nii)/2**20
        for method in ('memmap', 'whole'):
            res = {}
            for kind in (method, method + ':train'):                   # data path alone (RSS), then with the model (throughput)
                r = subprocess.run([sys.executable, __file__, '--child', kind, str(n), str(cdir)], capture_output=True, text=True)
                if r.returncode: sys.exit(f"child {kind} {n} failed:\n{r.stderr[-2000:]}")
                res |= json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(dict(size=n, method=method, volume_mb=round(mb, 1), **res)); log(rows[-1])
    shutil.rmtree(tmp)
    out['patches'] = dict(patch=list(PATCH), patches=N_PATCH, bs=PBS, arch='resnet3d_10', rows=rows)
    print(f"\n(d) {N_PATCH} training patches of {'x'.join(map(str, PATCH))} from volumes of growing size (float16 cache), 3D ResNet-10, batch {PBS}")
    print("| volume | float16 MB each | method | peak RSS of the data path (MB) | patches/s sampled | patches/s trained |\n|---|---|---|---|---|---|")
    for r in rows: print(f"| {r['size']}^3 | {r['volume_mb']} | {r['method']} | {r['rss_mb']} | {r['sample_per_s']} | {r['train_per_s']} |")

save('volumes', out, args, args.json)
