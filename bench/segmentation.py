"""Lung segmentation on CPU: the fastai U-Net learner against a plain PyTorch loop, sliding-window inference speed, and the
'lungseg' recipe, side by side in one run.

Data: the 90 real chest radiographs of ../shared/data/covid_lungs with lung masks (masks/), split by patient (a fifth of the
56 patients held out for validation, seed 0).

(a) Training throughput. The recipe's U-Net (resnet18 encoder, from scratch, 160 px, batch 8, fp32, AdamW) on the same training
    images, one epoch each, measured in alternation and the best of --repeat kept:
    - a hand-written PyTorch loop over images and masks preloaded as 160x160 tensors, no augmentation, scoring the validation
      images at the end;
    - medfast's `segmentation_dls` + `task_learner` without augmentation (the same work as the loop, plus fastai);
    - the same with the recipe's augmentation (what `train` runs).
    Training images per second of wall time, validation included.
(b) Sliding-window inference. The 'seg3d' 3D U-Net on volumes of 64^3, 96^3 and 128^3 with 32^3 windows (overlap 0.5, Gaussian
    blending), and the 'lungseg' 2D U-Net on a 1024x1024 image with 160x160 windows: seconds per input and megavoxels per second.
(c) Recipe. `medfast.engine.learner.train` with the 'lungseg' recipe (what `medfast train --images --masks` runs). Wall time, and Dice,
    IoU and HD95 (pixels) at each validation image's original size.
(d) Cross-validation (`--parts cv`, not in the default run: about half an hour). The recipe trained once per fold of a
    patient-grouped K-fold over all 90 images, each fold's patients held out: how much the held-out Dice moves with the patients.
    Written to its own file: `python bench/segmentation.py --parts cv --json bench/results/segmentation_cv.json`.

Run: `python bench/segmentation.py [--parts speed,window,recipe] [--repeat 2] [--epochs N]`.
"""
import argparse, contextlib, sys, time, warnings
import numpy as np, torch, pandas as pd
warnings.filterwarnings('ignore')

from results import save
from medfast.core import data_dir, seed_everything
from medfast.data.masks import mask_table, read_patients
from medfast.metrics.segmentation import dice_score
from medfast.data.tables import split_by_patient
from medfast.engine.params import get_recipe
from medfast.engine.learner import train, task_learner
from medfast.data.masks import segmentation_dls
from medfast.models.unet import create_unet, create_unet3d
from medfast.tasks.segment import DiceCELoss
from medfast.tasks.segment import TASK
from medfast.inference.sliding import sliding_window
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

ap = argparse.ArgumentParser()
ap.add_argument('--parts', default='speed,window,recipe')
ap.add_argument('--repeat', type=int, default=2)
ap.add_argument('--epochs', type=int, default=None, help='override the recipe epochs')
ap.add_argument('--folds', type=int, default=5, help="with --parts cv: patient-grouped folds")
ap.add_argument('--json', default=None)
args = ap.parse_args()
parts = args.parts.split(',')
def log(*a): print(*a, file=sys.stderr, flush=True)
out = {}
R = get_recipe('lungseg').params

root = data_dir()/'covid_lungs'
if not (root/'masks').is_dir(): sys.exit(f"SKIPPED (data absent): {root/'masks'}")
df = split_by_patient(mask_table(root/'images', root/'masks', read_patients(root/'metadata.csv')), valid_pct=.2, seed=0)
tr, va = df[~df.is_valid], df[df.is_valid]
log(f"{len(tr)} training, {len(va)} validation images")

def plain_epoch(model, xs, ys, xv, yv, bs, lr):
    "One epoch of a hand-written loop over preloaded tensors, then the validation images; returns seconds"
    opt, loss_fn = torch.optim.AdamW(model.parameters(), lr=lr), DiceCELoss()
    t = time.perf_counter(); model.train()
    for i in torch.randperm(len(xs)).split(bs):
        loss = loss_fn(model(xs[i]), ys[i]); opt.zero_grad(); loss.backward(); opt.step()
    model.eval()
    with torch.no_grad(): p = torch.cat([model(xv[i:i + bs]).argmax(1) for i in range(0, len(xv), bs)])
    return time.perf_counter() - t, float(np.mean([dice_score(a.numpy(), b.numpy()) for a, b in zip(p, yv)]))

with contextlib.redirect_stdout(sys.stderr):     # progress bars and fastai's epoch rows: stdout is for the tables
    if 'speed' in parts:
        plain_dls = segmentation_dls(df, size=R.size, channels=1, bs=R.bs, aug=False, codes=R.codes)
        def stack(dl):
            xs, ys = zip(*[(x, y) for x, y in dl.new(shuffle=False, drop_last=False)])
            return torch.cat(xs).as_subclass(torch.Tensor), torch.cat(ys).as_subclass(torch.Tensor).long()
        xs, ys = stack(plain_dls.train); xv, yv = stack(plain_dls.valid)
        lr = R.lr; best = {}
        def learner(aug):
            seed_everything(0)
            return task_learner(segmentation_dls(df, size=R.size, channels=1, bs=R.bs, aug=R.aug if aug else False, codes=R.codes), TASK, R)
        contenders = {'plain PyTorch loop (preloaded tensors, no augmentation)': None, 'medfast learner, no augmentation': False, 'medfast learner, recipe augmentation': True}
        learners = {k: learner(a) for k, a in contenders.items() if a is not None}
        seed_everything(0); plain = create_unet(R.arch, 2, 1, R.decoder)
        for rep in range(args.repeat):
            for k in contenders:
                if k in learners:
                    t = time.perf_counter(); learners[k].fit(1, lr); s = time.perf_counter() - t
                else: s, _ = plain_epoch(plain, xs, ys, xv, yv, R.bs, lr)
                best[k] = min(best.get(k, 1e9), s); log(f"{k}: {s:.1f} s")
        out['speed'] = {k: dict(seconds=round(s, 2), images_per_s=round(len(tr)/s, 2)) for k, s in best.items()}

    if 'window' in parts:
        torch.manual_seed(0); rows = []
        m3 = create_unet3d(1, 2, (16, 32, 64, 128)).eval()
        for side in (64, 96, 128):
            x = torch.randn(1, side, side, side)
            t = time.perf_counter(); sliding_window(m3, x, (32, 32, 32), .5, 'gaussian', bs=8); s = time.perf_counter() - t
            rows.append(dict(model='3D U-Net (seg3d)', input=f"{side}^3", window='32^3', seconds=round(s, 2), mvox_per_s=round(side**3/s/1e6, 3))); log(rows[-1])
        m2 = create_unet(R.arch, 2, 1, R.decoder).eval()
        x = torch.randn(1, 1024, 1024)
        t = time.perf_counter(); sliding_window(m2, x, (160, 160), .5, 'gaussian', bs=8); s = time.perf_counter() - t
        rows.append(dict(model='2D U-Net (lungseg)', input='1024^2', window='160^2', seconds=round(s, 2), mvox_per_s=round(1024**2/s/1e6, 3))); log(rows[-1])
        out['window'] = rows

    if 'cv' in parts:     # patient-grouped cross-validation: the spread of the held-out figures over other patient sets
        from sklearn.model_selection import GroupKFold
        folds = []
        for k, (_, va_i) in enumerate(GroupKFold(args.folds, shuffle=True, random_state=0).split(df, groups=df.patient)):
            d = df.assign(is_valid=False); d.iloc[va_i, d.columns.get_loc('is_valid')] = True
            t = time.perf_counter(); v = train(d, 'lungseg', epochs=args.epochs).run_record.valid
            folds.append(dict(fold=k, patients=int(d[d.is_valid].patient.nunique()), minutes=round((time.perf_counter() - t)/60, 2), **v)); log(folds[-1])
        dice = np.array([f['dice'] for f in folds]); n = np.array([f['images'] for f in folds])
        out['cv'] = dict(folds=folds, dice_mean=round(float(dice.mean()), 4), dice_sd=round(float(dice.std(ddof=1)), 4),
                         dice_image_weighted=round(float((dice*n).sum()/n.sum()), 4), dice_min_image=round(min(f['dice_min'] for f in folds), 4))

    if 'recipe' in parts:
        t = time.perf_counter()
        learn = train(df, 'lungseg', epochs=args.epochs)
        s = time.perf_counter() - t
        v = learn.run_record.valid
        out['recipe'] = dict(v, minutes=round(s/60, 2), epochs=learn.run_record.params.epochs, size=learn.run_record.params.size,
                             train_images=len(tr), valid_images=len(va), train_images_per_s=learn.run_record.history[-1]['train_images_per_s'])
        log(out['recipe'])


if 'speed' in out:
    base = next(v for k, v in out['speed'].items() if k.startswith('plain'))['images_per_s']
    print('| loop | epoch s | images/s | vs plain loop |\n|---|---|---|---|')
    for k, v in out['speed'].items(): print(f"| {k} | {v['seconds']} | {v['images_per_s']} | {v['images_per_s']/base:.2f} |")
if 'window' in out:
    print('\n| model | input | window | seconds | Mvoxels/s |\n|---|---|---|---|---|')
    for r in out['window']: print(f"| {r['model']} | {r['input']} | {r['window']} | {r['seconds']} | {r['mvox_per_s']} |")
if 'cv' in out:
    print('\n| fold | patients | images | Dice | worst Dice | IoU | HD95 px | train min |\n|---|---|---|---|---|---|---|---|')
    for f in out['cv']['folds']: print(f"| {f['fold']} | {f['patients']} | {f['images']} | {f['dice']:.4f} | {f['dice_min']:.4f} | {f['iou']:.4f} | {f['hd95']} | {f['minutes']} |")
    print(f"mean Dice over folds {out['cv']['dice_mean']} (sd {out['cv']['dice_sd']}); over images {out['cv']['dice_image_weighted']}")
if 'recipe' in out:
    c = out['recipe']
    print(f"\n| train min | epochs | Dice | IoU | HD95 px | worst Dice |\n|---|---|---|---|---|---|\n| {c['minutes']} | {c['epochs']} | {c['dice']:.4f} | {c['iou']:.4f} | {c['hd95']} | {c['dice_min']:.4f} |")
save('segmentation', out, args, args.json)
