"""Chest X-ray pneumonia, from scratch on CPU: medfast's old and new default recipes against two baselines, and medfast's training throughput
against a plain PyTorch loop with the same model and batch size. Everything runs in this one process, side by side.

Data: ../shared/data/chest_xray_224/train (5,216 images). The official test split is not used here.

Contenders (--only old-default,new-default,stock-fastai,aptos-post), the same 15-minute training budget (--minutes), in one run:
  old-default    the 'xray' recipe as it was before the shift-aware work (OLD_DEFAULT below), with its own epochs
  new-default    the 'xray' recipe as it is now, with its own epochs: exactly what `medfast train --folder` runs
  stock-fastai   vision_learner('resnet18', pretrained=False), Resize(--size) item transform, aug_transforms(), fit_one_cycle
  aptos-post     the plain-PyTorch recipe of the APTOS post: ImageFolder, WeightedRandomSampler, Adam lr 1e-2,
                 StepLR(gamma 0.7) per epoch, torchvision EfficientNet-B1 from scratch, fp32, at --size px
The baselines' epochs fill the budget (from a timed first stretch of batches, or while the next epoch still fits).
Every contender trains once, on the shift-aware split: the --hold-out group (NORMAL2: 744 normal radiographs whose file names
mark a separate acquisition batch) is held out whole, the rest split by patient (15 %, seed 42). From that one model come the
random-split figures (the validation images of the groups it saw) and the shift-aware ones (all validation images: accuracy,
AUROC, sensitivity, specificity, specificity on the unseen group, expected calibration error, accuracy re-weighted to the
official test split's class prior, --test-normal 0.375).

Throughput (--tp-batches, default 25 batches of 64, --rounds 5 interleaved rounds; images/s are medians, ratios the median of
the per-round ratios, since each round runs the contenders back to back):
  medfast learner  `fit` over a subset, the whole fastai loop: items from the cache, batch augmentation, callbacks
  plain loop       the same model, optimizer, autocast and channels-last, fed from preloaded uint8 tensors with the same
                   work a hand-written loop does (float conversion, normalization, a random affine augmentation)
  medfast fp32     the medfast learner with precision='fp32': what bf16 autocast buys on this CPU

Recipe screening (--only screen): each variant of the 'xray' recipe (--variants, JSON overrides: intensity standardization,
gamma augmentation, ...) at --screen-size px for --screen-epochs epochs, trained twice: on the patient split, and on the
shift-aware split that holds out one acquisition group whole (--hold-out NORMAL2: 744 normal radiographs whose file names mark
a separate batch, plus a patient split of the rest). Figures: accuracy, AUROC, balanced accuracy, sensitivity, specificity,
expected calibration error, and accuracy re-weighted to the official test split's class prior (--test-normal 0.375).

Run: `python bench/chest_xray.py [--minutes 15] [--only old-default,new-default,stock-fastai,aptos-post,throughput,screen] [--append]`;
--append keeps the rows of the parts not run again.
"""
import argparse, json, math, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
from results import save
import torch.nn.functional as F
warnings.filterwarnings('ignore')

from medfast.core import data_dir, seed_everything
from medfast.data.tables import items_from_folder, split_by_patient
from medfast.engine.params import get_recipe
from medfast.engine.learner import train, task_learner
from medfast.tasks.classify import TASK
from medfast.metrics.classification import classification_metrics
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']   # tables, not progress bars, in the log

ap = argparse.ArgumentParser()
ap.add_argument('--minutes', type=float, default=15.)
ap.add_argument('--size', type=int, default=128)
ap.add_argument('--arch', default='resnet18')
ap.add_argument('--bs', type=int, default=64)
ap.add_argument('--tp-batches', type=int, default=25)
ap.add_argument('--rounds', type=int, default=5, help='interleaved throughput rounds (median reported)')
ap.add_argument('--only', default='throughput,old-default,new-default,stock-fastai,aptos-post')
ap.add_argument('--json', default=None, help='also write the rows here')
ap.add_argument('--screen-size', type=int, default=64, help='image size of the recipe screening runs')
ap.add_argument('--screen-epochs', type=int, default=8, help='epochs of each screening run')
ap.add_argument('--hold-out', default='NORMAL2', help='file-name group held out whole by the shift-aware split')
ap.add_argument('--test-normal', type=float, default=0.375, help='share of normal images at which accuracy is re-weighted (the official test prior)')
ap.add_argument('--append', action='store_true', help='keep the rows already in the JSON file and run only the missing ones')
ap.add_argument('--variants', default='base={"aug": true};equalize={"aug": true, "pre": "equalize"};clahe={"aug": true, "pre": "clahe"};gamma={"aug": {"max_gamma": 1.5}};equalize+gamma={"pre": "equalize", "aug": {"max_gamma": 1.5}};strong={"aug": {"max_rotate": 20, "min_scale": 0.6, "max_zoom": 1.25, "max_lighting": 0.4, "max_gamma": 1.5}}',
                help='screening variants: name=JSON recipe overrides, separated by ;')
args = ap.parse_args()
only = args.only.split(',')
torch.set_num_threads(torch.get_num_threads())

root = data_dir()/'chest_xray_224'/'train'
if not root.is_dir(): sys.exit(f"SKIPPED (data absent): {root}")
df = split_by_patient(items_from_folder(root, preset='chest_xray'), valid_pct=0.15, seed=42)
vocab = ['NORMAL', 'PNEUMONIA']
budget = args.minutes*60
# the 'xray' recipe's values before the shift-aware work (commit c903035); the fields the new default changed, and the rest as they were
OLD_DEFAULT = dict(arch='resnet18', size=128, epochs=10, bs=64, lr=3e-3, sampling='oversample', label_smoothing=0.1, mixup=0., aug=True, pre='none',
                   thresholds=False, tta=False)
rows = []
def log(*a): print(*a, file=sys.stderr, flush=True)
class Rows(list):
    "rows, each also logged at once (a crash later keeps the figures already measured)"
    def append(self, r):
        super().append(r); log('ROW', json.dumps(r))
        save('chest_xray', list(self), args, args.json)
rows = Rows()
def part(r): return r.get('part') or ('screen' if 'variant' in r else 'throughput' if 'train_img_s' in r and 'accuracy' not in r else 'old')
out = Path(args.json) if args.json else Path(__file__).parent/'results'/'chest_xray.json'
if args.append and out.is_file():   # keep the rows of the parts this run does not measure (and a screening's rows, to go on with it)
    for r in json.loads(out.read_text())['results']:
        if part(r) not in only or part(r) == 'screen': rows.append(r)

def epochs_for(sec_per_img, n_train, eval_s=0.):
    return max(1, int((budget - eval_s) / (sec_per_img*n_train)))

# ---------------------------------------------------------------- throughput: medfast learner vs plain loop
if 'throughput' in only:
    n = args.tp_batches*args.bs
    sub = df.iloc[np.random.default_rng(0).permutation(len(df))[:n + 200]].copy()
    sub['is_valid'] = [False]*n + [True]*200
    R = get_recipe('xray').params.replace(arch=args.arch, size=args.size, bs=args.bs, sampling='none')
    dls = TASK.loaders(sub, R)
    learn = task_learner(dls, TASK, R)
    learn32 = task_learner(dls, TASK, R.replace(precision='fp32'))   # the same learner without bf16 autocast
    # the plain loop: same model class, same optimizer settings (fastai's Adam, wd 0.01), same precision and layout
    from medfast.models.zoo import create_model
    from PIL import Image
    X = torch.from_numpy(np.stack([np.asarray(Image.open(p).convert('L').resize((int(round(args.size*1.15/8)*8),)*2, Image.BILINEAR)) for p in sub.item[:n]]))[:,None]
    Y = torch.tensor((sub.label[:n] == 'PNEUMONIA').astype(int).values)
    mean, std = X.float().mean()/255, X.float().std()/255
    model = create_model(args.arch, 2, n_in=1).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.01)
    bf16 = learn.run_record.params.precision == 'bf16'
    def plain_epoch():
        model.train(); perm = torch.randperm(n); t = time.perf_counter()
        for i in range(n//args.bs):
            idx = perm[i*args.bs:(i+1)*args.bs]
            x = (X[idx].float()/255 - mean)/std
            k = len(idx); ang = (torch.rand(k)*2-1)*math.radians(10); sc = 1/(1+torch.rand(k)*.1)
            th = torch.stack([torch.stack([sc*torch.cos(ang), -sc*torch.sin(ang), torch.zeros(k)],1), torch.stack([sc*torch.sin(ang), sc*torch.cos(ang), torch.zeros(k)],1)],1)
            x = F.grid_sample(x, F.affine_grid(th, (k,1,args.size,args.size), align_corners=False), align_corners=False)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): out = model(x)
            loss = F.cross_entropy(out.float(), Y[idx], label_smoothing=0.1)
            opt.zero_grad(); loss.backward(); opt.step()
        return n//args.bs*args.bs/(time.perf_counter()-t)
    def medfast_epoch(l=learn):
        with l.no_bar(), l.no_logging(): l.fit(1, 1e-3, cbs=[_Stop()])
        return l._tp
    from fastai.callback.core import Callback, CancelValidException
    class _Stop(Callback):
        "time the training batches only, then skip validation"
        def before_train(self): self.t = time.perf_counter()
        def after_train(self): self.learn._tp = len(self.dl)*args.bs/(time.perf_counter()-self.t)
        def before_validate(self): raise CancelValidException()
    plain_epoch(); medfast_epoch(); medfast_epoch(learn32)       # warm-up (allocator, oneDNN kernels)
    pm, mm, m32 = [], [], []
    for r in range(args.rounds): pm.append(plain_epoch()); mm.append(medfast_epoch()); m32.append(medfast_epoch(learn32))
    p, m, f = float(np.median(pm)), float(np.median(mm)), float(np.median(m32))
    r_m = float(np.median(np.array(mm)/np.array(pm))); r_f = float(np.median(np.array(m32)/np.array(pm)))   # per-round ratios: each pair ran back to back
    log(f"throughput plain {pm} medfast {mm} medfast fp32 {m32}")
    prec = learn.run_record.params.precision
    rows.append(dict(part='throughput', contender=f'plain loop ({args.arch}, bs {args.bs}, {prec}, channels-last)', train_img_s=round(p, 1)))
    rows.append(dict(part='throughput', contender=f'medfast learner (same model, bs, precision)', train_img_s=round(m, 1), ratio_vs_plain=round(r_m, 3)))
    rows.append(dict(part='throughput', contender=f'medfast learner fp32 (precision="fp32")', train_img_s=round(f, 1), ratio_vs_plain=round(r_f, 3)))

# ---------------------------------------------------------------- the four contenders on the shift-aware split
# Each is trained once, on the split that holds the --hold-out group out whole, and scored twice from that one model: on the
# validation images of the groups it saw (the random-split figures) and on all validation images, the unseen group included.
from medfast.data.tables import split_holding_out
from medfast.metrics.shift import calibration, prior_accuracy, group_metrics
held_split = split_holding_out(df.drop(columns='is_valid'), args.hold_out, valid_pct=0.15, seed=42)
h_tr, h_va = held_split[~held_split.is_valid], held_split[held_split.is_valid]
h_y = h_va.label.map({k: i for i,k in enumerate(vocab)}).values
h_held = (h_va.group == args.hold_out).values

def figures(probs, thresholds=None):
    "Random-split figures (groups seen in training) next to the shift-aware ones (every validation image) for one model's probabilities"
    seen, every = (classification_metrics(probs[m], h_y[m], thresholds=thresholds) for m in (~h_held, np.ones_like(h_held)))
    g = group_metrics(probs, h_y, h_va.group.values)
    r = {f'seen_{k}': round(seen[k], 4) for k in ('accuracy', 'auroc', 'sensitivity', 'specificity')}
    r |= {k: round(every[k], 4) for k in ('accuracy', 'auroc', 'balanced_accuracy', 'sensitivity', 'specificity')}
    return r | dict(n_seen=int((~h_held).sum()), n_valid=len(h_y), held_specificity=round(float(g[args.hold_out]['specificity']), 4),
                    ece=round(calibration(probs, h_y)['ece'], 4), accuracy_test_prior=round(prior_accuracy(probs, h_y, [args.test_normal, 1-args.test_normal]), 4))

def timed_rows(key, name, seconds, epochs, images, probs, thresholds=None, **extra):
    rows.append(dict(part=key, contender=name, hold_out=args.hold_out, budget_min=args.minutes, epochs=epochs, train_min=round(seconds/60, 1), train_img_s=round(images/seconds, 1), **extra, **figures(probs, thresholds)))

def medfast_contender(key, name, recipe):
    "A medfast recipe exactly as `medfast train` runs it (its own epochs), scored as `medfast evaluate` scores it"
    seed_everything(42)
    learn = train(held_split, 'xray', **recipe)
    h = [x for x in learn.run_record.history if x['step'] == 'fit_one_cycle'][-1]
    probs = TASK.predict(learn, h_va, learn.run_record.params.tta)
    timed_rows(key, name, h['seconds'], learn.run_record.params.epochs, h['seconds']*h['train_images_per_s'], probs, learn.run_record.thresholds,
               recipe=recipe)
    return learn, h

if 'old-default' in only: _ = medfast_contender('old-default', 'old default (xray before issue 15)', OLD_DEFAULT)
if 'new-default' in only:
    learn, h = medfast_contender('new-default', "new default ('xray', with its test-time augmentation)", {})
    timed_rows('new-default', "new default without test-time augmentation (--no-tta)", h['seconds'], learn.run_record.params.epochs, h['seconds']*h['train_images_per_s'],
               TASK.predict(learn, h_va, False), learn.run_record.thresholds)    # the same model
    from medfast.engine.model_format import export
    export(learn, Path('/tmp')/'medfast_chest_bench.pt')

# ---------------------------------------------------------------- the APTOS post's plain-PyTorch recipe
if 'aptos-post' in only:
    import torchvision
    from torchvision import transforms as T
    from torch.utils.data import DataLoader, Subset, WeightedRandomSampler
    seed_everything(42)
    tf_tr = T.Compose([T.Resize((args.size, args.size)), T.RandomHorizontalFlip(), T.RandomRotation(10), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    tf_va = T.Compose([T.Resize((args.size, args.size)), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds_tr, ds_va = torchvision.datasets.ImageFolder(root, tf_tr), torchvision.datasets.ImageFolder(root, tf_va)
    pos = {str(Path(p)): i for i,(p,_) in enumerate(ds_tr.samples)}
    itr, iva = [pos[p] for p in h_tr.item], [pos[p] for p in h_va.item]
    labels = np.array(ds_tr.targets)[itr]
    cw = 1.0/np.bincount(labels)
    sampler = WeightedRandomSampler(torch.tensor(cw[labels], dtype=torch.double), len(itr))   # weights aligned with the subset's items
    dl_tr = DataLoader(Subset(ds_tr, itr), batch_size=args.bs, sampler=sampler, num_workers=2)
    dl_va = DataLoader(Subset(ds_va, iva), batch_size=128, num_workers=2)
    model = torchvision.models.efficientnet_b1(weights=None, num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    t = time.perf_counter(); seen = 0; ep = 0
    while True:   # whole epochs while the next one still fits the budget (the last epoch's time as its estimate)
        model.train(); te = time.perf_counter()
        for x,y in dl_tr:
            loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step(); seen += len(y)
        sched.step(); ep += 1
        if (time.perf_counter()-t) + (time.perf_counter()-te) > budget: break
    train_s = time.perf_counter() - t
    model.eval(); P = []
    with torch.no_grad():
        for x,_ in dl_va: P.append(model(x).softmax(1))
    timed_rows('aptos-post', 'plain PyTorch (the APTOS post: EfficientNet-B1)', train_s, ep, seen, torch.cat(P).numpy())

# ---------------------------------------------------------------- stock fastai
if 'stock-fastai' in only:
    from fastai.vision.all import ImageDataLoaders, Resize, aug_transforms, vision_learner, Callback, CancelFitException
    seed_everything(42)
    dd = held_split.assign(item=[str(Path(p).relative_to(root)) for p in held_split.item])
    dls = ImageDataLoaders.from_df(dd, path=root, fn_col='item', label_col='label', valid_col='is_valid', item_tfms=Resize(args.size), batch_tfms=aug_transforms(), bs=args.bs)
    learn = vision_learner(dls, 'resnet18', pretrained=False)
    class _Probe(Callback):
        def after_batch(self):
            self.i = getattr(self, 'i', 0) + 1
            if self.i == 3: self.t = time.perf_counter()
            if self.i == 13: self.learn._spi = (time.perf_counter()-self.t)/(10*args.bs); raise CancelFitException()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=[_Probe()])
    ep = epochs_for(learn._spi*1.04, len(dls.train_ds), eval_s=20)
    learn = vision_learner(dls, 'resnet18', pretrained=False)
    t = time.perf_counter()
    with learn.no_bar(): learn.fit_one_cycle(ep)
    train_s = time.perf_counter() - t
    p,_ = learn.get_preds(dl=dls.valid)
    timed_rows('stock-fastai', 'stock fastai (resnet18)', train_s, ep, len(dls.train_ds)*ep, p.numpy())

# ---------------------------------------------------------------- recipe screening on the shift-aware protocol
if 'screen' in only:
    from medfast.data.tables import split_holding_out
    from medfast.metrics.shift import calibration, prior_accuracy
    splits = {f'{args.hold_out} held out': split_holding_out(df.drop(columns='is_valid'), args.hold_out, valid_pct=0.15, seed=42), 'patient': df}
    variants = {v: json.loads(o) for v, o in (x.split('=', 1) for x in args.variants.split(';'))}
    done = {(r.get('variant'), r.get('split')) for r in rows}   # with --append: go on with a screening, running only the pairs it lacks
    for v, over in variants.items():
        for sname, table in splits.items():
            if (v, sname) in done: continue
            t = time.perf_counter()
            learn = train(table, 'xray', arch=args.arch, size=args.screen_size, epochs=args.screen_epochs, bs=args.bs, **over)
            probs, y = (a.numpy() for a in learn.get_preds(dl=learn.dls.valid))
            m = classification_metrics(probs, y)
            rows.append(dict(part='screen', variant=v, split=sname, n_valid=len(y), overrides=over, train_min=round((time.perf_counter()-t)/60, 1),
                             accuracy=round(m['accuracy'], 4), auroc=round(m['auroc'], 4), balanced_accuracy=round(m['balanced_accuracy'], 4),
                             sensitivity=round(m['sensitivity'], 4), specificity=round(m['specificity'], 4), ece=round(calibration(probs, y)['ece'], 4),
                             accuracy_test_prior=round(prior_accuracy(probs, y, [args.test_normal, 1-args.test_normal]), 4)))

tab = pd.DataFrame(rows)
print(f"\nchest_xray_224 train: contenders on the split holding {args.hold_out} out ({len(h_tr)} train / {len(h_va)} valid images, {int(h_held.sum())} of them unseen); "
      f"budget {args.minutes:g} min training each; {torch.get_num_threads()} threads")
for keys, cols in ((['contender'], ['contender', 'epochs', 'train_min', 'train_img_s', 'seen_accuracy', 'seen_auroc', 'accuracy', 'auroc', 'sensitivity', 'specificity', 'held_specificity', 'ece', 'accuracy_test_prior']),
                   (['variant'], ['variant', 'split', 'accuracy', 'auroc', 'sensitivity', 'specificity', 'ece', 'accuracy_test_prior'])):
    t = tab[tab[keys[0]].notna()] if keys[0] in tab else tab.iloc[:0]
    if len(t): print(t[[c for c in cols if c in t]].to_string(index=False))
save('chest_xray', list(rows), args, args.json)
