"""Training throughput on a CUDA GPU: medfast's fastai learner against a plain PyTorch loop on the same GPU, side by side.

Without a CUDA device it prints SKIPPED and writes nothing (exit status 0): the CPU benchmarks are bench/chest_xray.py and the others.

Both sides train the same model (the 'xray' recipe's resnet18, or --arch) at the same size and batch, on the chest radiographs of
../shared/data/chest_xray_224/train decoded once into memory:
  medfast      `medfast.engine.learner.task_learner` with the recipe: precision 'auto' (fp16 autocast with fastai's gradient scaler on CUDA),
               channels-last, pinned host memory, presizing with the batch augmentation running on the GPU, one-cycle AdamW
  plain loop   the same model, fp16 autocast with `torch.amp.GradScaler`, channels-last, AdamW with a one-cycle schedule, batches from
               a pinned uint8 tensor copied with `non_blocking=True`, the same augmentation (fastai's batch transforms) on the GPU
Images per second over --batches training batches after --warmup, alternating --rounds times; medians and the median ratio.

Run: `python bench/gpu.py [--arch resnet18] [--size 224] [--bs 128] [--batches 50] [--rounds 3]`.
"""
import argparse, sys, time, warnings
warnings.filterwarnings('ignore')
import numpy as np, torch, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--arch', default=None)
ap.add_argument('--size', type=int, default=224)
ap.add_argument('--bs', type=int, default=128)
ap.add_argument('--batches', type=int, default=50)
ap.add_argument('--warmup', type=int, default=5)
ap.add_argument('--rounds', type=int, default=3)
ap.add_argument('--json', default=None)
args = ap.parse_args()
if not torch.cuda.is_available():
    print("SKIPPED: no CUDA device (this benchmark measures the GPU path; the CPU ones are the other scripts in bench/)"); sys.exit(0)

from results import save
from medfast.core import data_dir, seed_everything
from medfast.data.tables import items_from_folder, split_by_patient
from medfast.engine.params import get_recipe
from medfast.engine.learner import task_learner
from medfast.data.tables import find_tfms
from medfast.data.images import LoadImage
from medfast.tasks.classify import TASK
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

src = data_dir()/'chest_xray_224'/'train'
if not src.is_dir(): sys.exit(f"SKIPPED (data absent): {src}")
def log(*a): print(*a, file=sys.stderr, flush=True)
dev = torch.device('cuda')
R = get_recipe('xray').params.replace(size=args.size, bs=args.bs, **({'arch': args.arch} if args.arch else {}))
t = split_by_patient(items_from_folder(src, preset='chest_xray'), valid_pct=0.15, seed=42)
n = (args.batches + args.warmup)*args.bs
sub = t[~t.is_valid].sample(min(n, int((~t.is_valid).sum())), random_state=0).assign(is_valid=False)
sub = __import__('pandas').concat([sub, t[t.is_valid].head(args.bs)])
seed_everything(0)
dls = TASK.loaders(sub, R)
learn = task_learner(dls, TASK, R)
log('precision', learn.run_record.params.precision, 'device', dls.device)

class Stop(Exception): pass
def learner_rate() -> float:
    "Images/s of the learner's own loop over `--batches` batches after `--warmup`"
    from fastai.callback.core import Callback, CancelFitException
    class Time(Callback):
        def before_batch(self):
            if self.iter == args.warmup: torch.cuda.synchronize(); self.t = time.perf_counter()
        def after_batch(self):
            if self.iter == args.warmup + args.batches - 1: torch.cuda.synchronize(); self.dt = time.perf_counter() - self.t; raise CancelFitException
    cb = Time()
    learn.fit_one_cycle(1, R.lr, cbs=cb)
    return args.batches*args.bs/cb.dt

# the plain loop: same model architecture and augmentation, its own pinned uint8 batches
from medfast.models.zoo import create_model
lt = find_tfms(dls.train, LoadImage)[0]
X = torch.stack([torch.from_numpy(lt.cached(o)).reshape(1, *lt.cached(o).shape[:2]) for o in sub[~sub.is_valid]['item']]).pin_memory()
Y = torch.tensor((sub[~sub.is_valid]['label'] == 'PNEUMONIA').astype(int).values).pin_memory()
aug = [f for f in dls.train.after_batch.fs if type(f).__name__ not in ('IntToFloatTensor',)]
def loop_rate() -> float:
    m = create_model(R.arch, 2, n_in=1).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=R.lr); steps = args.batches + args.warmup
    sch = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=R.lr, total_steps=steps); scaler = torch.amp.GradScaler('cuda')
    m.train(); perm = torch.randperm(len(X))
    for i in range(steps):
        if i == args.warmup: torch.cuda.synchronize(); t0 = time.perf_counter()
        idx = perm[(i*args.bs) % len(X):][:args.bs]
        xb = X[idx].to(dev, non_blocking=True).float().div_(255); yb = Y[idx].to(dev, non_blocking=True)
        from fastai.vision.core import TensorImage
        xb = TensorImage(xb)
        for f in aug: xb = f(xb, split_idx=0)
        xb = xb.as_subclass(torch.Tensor).contiguous(memory_format=torch.channels_last)
        with torch.autocast('cuda', dtype=torch.float16): loss = F.cross_entropy(m(xb), yb)
        opt.zero_grad(set_to_none=True); scaler.scale(loss).backward(); scaler.step(opt); scaler.update(); sch.step()
    torch.cuda.synchronize()
    return args.batches*args.bs/(time.perf_counter() - t0)

ls, ps = [], []
for _ in range(args.rounds): ls.append(learner_rate()); ps.append(loop_rate()); log(f"learner {ls[-1]:.0f} img/s, loop {ps[-1]:.0f} img/s")
ratio = float(np.median([a/b for a, b in zip(ls, ps)]))
out = dict(gpu=torch.cuda.get_device_name(0), arch=R.arch, size=args.size, bs=args.bs, precision=learn.run_record.params.precision,
           learner_img_s=round(float(np.median(ls)), 1), loop_img_s=round(float(np.median(ps)), 1), ratio=round(ratio, 3))
print(f"\n{out['gpu']}: {R.arch} at {args.size} px, batch {args.bs}, {out['precision']}, channels-last, {args.batches} batches x {args.rounds} rounds")
print("| loop | images/s | vs plain loop |\n|---|---|---|")
print(f"| plain PyTorch (AMP, GradScaler, channels-last, pinned, non_blocking) | {out['loop_img_s']} | 1.00 |")
print(f"| medfast fastai learner | {out['learner_img_s']} | {ratio:.2f} |")
save('gpu', out, args, args.json)
