"""3D segmentation of the hippocampus on CPU: medfast against a plain MONAI baseline, side by side in one run.

Data: the 208 hippocampus MR crops of ../shared/data/hippocampus with their human label maps (1 anterior, 2 posterior), split by
case (a fifth held out for validation, seed 0). MONAI is a bench-only dependency (`pip install monai`).

(a) Inference throughput (`window`). The same network (medfast's 3D U-Net as the planner sizes it for this data, random weights)
    and window (40x56x40, overlap 0.5, Gaussian blending, 4 windows per pass), on every validation volume and on one 128^3
    volume: medfast's `sliding_window` against MONAI's `sliding_window_inference`, alternated, the best of --repeat kept.
    Voxels per second, and the ratio. Both return logits (no activation) from CPU tensors; the outputs are checked to agree.
(b) The network (`nets`). One training step (forward, backward) on a batch of 4 patches of 40x56x40, medfast's 3D U-Net against
    the first one (`unet3d_v1`, model format 3 and before: a decoder stage past the input and back), alternated, best of --repeat.
(c) Training at one budget (`train`). Each trains for --minutes of wall time on the same training cases, then segments every
    validation volume on its own grid, scored by the same code (`medfast.metrics.segmentation.dice_score`, per class):
    - medfast: `medfast.engine.learner.train` with the planned 'seg3d' recipe and `budget=--minutes` (what
      `medfast train --images --masks --budget` runs: the 3D U-Net, Dice + CE, a third of the patches on the foreground, flips);
    - MONAI: its tutorial recipe as a plain loop: `UNet` (channels 16 to 128, strides 2, two residual units), `DiceCELoss`
      (softmax, one-hot), Adam at 1e-3, volumes z-scored and padded to the same 40x56x40 patch, random flips on each axis,
      batch 5, epochs until the minutes run out; `sliding_window_inference` on each validation volume.
    Dice per class and its mean, training minutes, epochs, and inference seconds per validation volume.

Run: `python bench/segmentation3d.py [--parts window,nets,train] [--minutes 10] [--repeat 3]`.
"""
import argparse, contextlib, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
warnings.filterwarnings('ignore')

from results import save
from medfast.core import data_dir, seed_everything
from medfast.data.masks import volume_mask_table
from medfast.data.tables import split_table
from medfast.engine.plan import make_plan
from medfast.engine.learner import train
from medfast.inference.sliding import sliding_window
from medfast.metrics.segmentation import dice_score
from medfast.models.unet import create_unet3d, create_unet3d_v1
from medfast.tasks.segment import predict_volumes
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

ap = argparse.ArgumentParser()
ap.add_argument('--parts', default='window,nets,train')
ap.add_argument('--minutes', type=float, default=10., help='training budget of each side')
ap.add_argument('--repeat', type=int, default=3)
ap.add_argument('--json', default=None)
args = ap.parse_args()
parts = args.parts.split(',')
def log(*a): print(*a, file=sys.stderr, flush=True)
try: import monai, nibabel as nib
except ImportError: sys.exit("SKIPPED: the baseline needs MONAI (pip install monai)")
from monai.inferers import sliding_window_inference

root = data_dir()/'hippocampus'
if not (root/'labels').is_dir(): sys.exit(f"SKIPPED (data absent): {root/'labels'}")
df = split_table(volume_mask_table(root/'images', root/'labels'), 'patient', valid_pct=.2, seed=0)
tr, va = df[~df.is_valid], df[df.is_valid]
log(f"{len(tr)} training, {len(va)} validation volumes; torch threads {torch.get_num_threads()}")
PATCH, CODES = (40, 56, 40), ('background', 'anterior', 'posterior')
out = dict(cases=dict(train=len(tr), valid=len(va)), patch=list(PATCH))

def zscore(a): return ((a - a.mean())/(a.std() or 1.)).astype(np.float32)
def volumes(rows):
    "Each volume as stored (x, y, z, as nibabel reads it), z-scored, and its label map"
    return [(zscore(np.asarray(nib.load(r['item']).dataobj, np.float32)), np.asarray(nib.load(r['mask']).dataobj).round().astype(np.uint8)) for _, r in rows.iterrows()]

def per_class(preds, truths) -> dict:
    "Dice of each class, averaged over volumes (a class absent from both scores 1, from one 0: medfast's convention for both sides)"
    d = {c: float(np.mean([dice_score(p, t, k) for p, t in zip(preds, truths)])) for k, c in enumerate(CODES) if k}
    return {k: round(v, 4) for k, v in d.items()} | dict(mean=round(float(np.mean(list(d.values()))), 4))

with contextlib.redirect_stdout(sys.stderr):     # fastai's epoch rows: stdout is for the tables
    if 'window' in parts:
        seed_everything(0)
        net = create_unet3d(1, 3, (16, 32, 64, 128), PATCH).eval()
        vols = [torch.from_numpy(v)[None] for v, _ in volumes(va)] + [torch.randn(1, 128, 128, 128)]
        names = ['hippocampus validation volumes']*len(va) + ['one 128^3 volume']
        best = {}
        with torch.no_grad():
            for rep in range(args.repeat):
                for side in ('medfast', 'monai') if rep % 2 == 0 else ('monai', 'medfast'):
                    for name in dict.fromkeys(names):
                        xs = [x for x, n in zip(vols, names) if n == name]
                        t = time.perf_counter()
                        for x in xs:
                            if side == 'medfast': y = sliding_window(net, x, PATCH, .5, 'gaussian', bs=4)
                            else: y = sliding_window_inference(x[None], PATCH, 4, net, overlap=.5, mode='gaussian')[0]
                        s = time.perf_counter() - t
                        best[(side, name)] = min(best.get((side, name), s), s)
            for name in dict.fromkeys(names):                                     # the two agree (their Gaussians differ slightly)
                x = [x for x, n in zip(vols, names) if n == name][-1]
                a, b = sliding_window(net, x, PATCH, .5, 'gaussian', bs=4), sliding_window_inference(x[None], PATCH, 4, net, overlap=.5, mode='gaussian')[0]
                agree = float((a.argmax(0) == b.argmax(0)).float().mean())
                n_vox = sum(int(np.prod(x.shape[1:])) for x, m in zip(vols, names) if m == name)
                out.setdefault('window', []).append(dict(input=name, volumes=names.count(name), voxels=n_vox,
                    medfast_mvox_s=round(n_vox/best[('medfast', name)]/1e6, 3), monai_mvox_s=round(n_vox/best[('monai', name)]/1e6, 3),
                    ratio=round(best[('monai', name)]/best[('medfast', name)], 2), argmax_agreement=round(agree, 5)))
                log(out['window'][-1])

    if 'nets' in parts:
        seed_everything(0)
        nets = {'unet3d (this one)': create_unet3d(1, 3, (16, 32, 64, 128), PATCH), 'unet3d_v1 (format 3 and before)': create_unet3d_v1(1, 3, (16, 32, 64, 128))}
        x, y, best = torch.randn(4, 1, *PATCH), torch.randint(0, 3, (4, *PATCH)), {}
        for rep in range(args.repeat):
            for name in (list(nets) if rep % 2 == 0 else list(nets)[::-1]):
                t = time.perf_counter(); torch.nn.functional.cross_entropy(nets[name](x), y).backward(); s = time.perf_counter() - t
                best[name] = min(best.get(name, s), s)
        out['nets'] = [dict(network=k, seconds_per_step=round(v, 2), parameters=sum(p.numel() for p in nets[k].parameters()),
                            speedup=round(best['unet3d_v1 (format 3 and before)']/v, 2)) for k, v in best.items()]
        log(out['nets'])

    if 'train' in parts:
        rows = []
        # medfast: the planned recipe at the budget
        seed_everything(0)
        plan = make_plan(df, 'seg3d')
        t = time.perf_counter()
        learn = train(df, plan, budget=args.minutes)
        train_min = (time.perf_counter() - t)/60
        t = time.perf_counter(); preds = predict_volumes(learn, va); s = (time.perf_counter() - t)/len(va)
        truths = [np.asarray(nib.load(m).dataobj).round().astype(np.uint8).transpose(2, 1, 0) for m in va['mask']]   # (z, y, x), as medfast reads
        rows.append(dict(side='medfast (planned seg3d)', train_minutes=round(train_min, 1), epochs=learn.run_record.params.epochs,
                         infer_s_per_volume=round(s, 3), **per_class(preds, truths)))
        log(rows[-1])
        # MONAI: its tutorial recipe, a plain loop
        from monai.networks.nets import UNet
        from monai.losses import DiceCELoss
        seed_everything(0)
        net = UNet(3, 1, 3, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
        loss_fn, opt = DiceCELoss(softmax=True, to_onehot_y=True), torch.optim.Adam(net.parameters(), 1e-3)
        def pad(a):
            "Centred zero padding to PATCH (the volumes are smaller), x y z as stored, z-y-x patch order reversed"
            tgt = PATCH[::-1]; return np.pad(a, [((n - s)//2, n - s - (n - s)//2) for s, n in zip(a.shape, np.maximum(tgt, a.shape))])
        train_vols = [(pad(v), pad(m)) for v, m in volumes(tr)]
        rng, t, epochs = np.random.default_rng(0), time.perf_counter(), 0
        while time.perf_counter() - t < args.minutes*60:
            net.train()
            for i in np.array_split(rng.permutation(len(train_vols)), max(1, len(train_vols)//5)):
                xs, ys = [], []
                for k in i:
                    v, m = train_vols[k]
                    for ax in range(3):
                        if rng.random() < .5: v, m = np.flip(v, ax), np.flip(m, ax)
                    c = [rng.integers(0, s - p + 1) for s, p in zip(v.shape, PATCH[::-1])]
                    sl = tuple(slice(a, a + p) for a, p in zip(c, PATCH[::-1]))
                    xs.append(np.ascontiguousarray(v[sl])); ys.append(np.ascontiguousarray(m[sl]))
                x, y = torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))[:, None].long()
                loss = loss_fn(net(x), y); opt.zero_grad(); loss.backward(); opt.step()
                if time.perf_counter() - t >= args.minutes*60: break
            epochs += 1
        train_min = (time.perf_counter() - t)/60
        net.eval(); t = time.perf_counter(); mp = []
        with torch.no_grad():
            for v, _ in volumes(va):
                mp.append(sliding_window_inference(torch.from_numpy(v)[None, None], PATCH[::-1], 4, net, overlap=.5, mode='gaussian')[0].argmax(0).numpy().astype(np.uint8))
        s = (time.perf_counter() - t)/len(va)
        mt = [m for _, m in volumes(va)]
        rows.append(dict(side='MONAI (UNet, DiceCELoss, plain loop)', train_minutes=round(train_min, 1), epochs=epochs,
                         infer_s_per_volume=round(s, 3), **per_class(mp, mt)))
        log(rows[-1])
        out['train'] = rows

for part in ('window', 'nets', 'train'):
    if part in out: print(pd.DataFrame(out[part]).to_string(index=False))
save('segmentation3d', out, args, args.json)
