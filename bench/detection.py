"""Lung-box detection on CPU: the fastai detector against a plain PyTorch loop, torchvision's default heads against medfast's lean
ones, and the 'lungs' recipe, side by side in one run.

Data: the 123 real chest radiographs of ../shared/data/covid_lungs with their 246 COCO boxes (Right Lung, Left Lung), split by
patient (20% of the 78 patients held out for validation, seed 0): 98 training and 25 validation images.

(a) Training throughput. The recipe's detector (Faster R-CNN, MobileNet-v3 FPN, from scratch, 192 px, batch 8, fp32, AdamW one-cycle)
    on the same training images, one epoch each, measured in alternation and the best of --repeat kept:
    - a hand-written PyTorch loop over images preloaded as 192x192 tensors, no augmentation, scoring the validation images at the end;
    - medfast's `detection_dls` + `task_learner` without augmentation (the same work as the loop, plus fastai);
    - the same with the recipe's augmentation (what `train` runs);
    - the same with torchvision's default heads (`lean=False`: 2000 proposals, 512 sampled regions, a 1024-unit box head).
    Training images per second of wall time, validation included.
(b) Recipe. `medfast.engine.learner.train` with the 'lungs' recipe (what `medfast train --coco` runs). Wall time, training
    images per second, validation mAP@0.5 (PASCAL VOC 2010), COCO mAP@[.5:.95] and AP@0.5 per lung, in the original pixels.

Run: `python bench/detection.py [--parts speed,recipe] [--repeat 2] [--epochs N]`.
"""
import argparse, json, random, sys, time, warnings
import numpy as np, torch
warnings.filterwarnings('ignore')

from results import save
from medfast.core import data_dir, seed_everything
from medfast.io.images import read_image
from medfast.data.tables import split_by_patient
from medfast.data.boxes import read_coco
from medfast.transforms.boxes import resize_boxes
from medfast.metrics.detection import detection_metrics
from medfast.engine.params import get_recipe
from medfast.engine.learner import train, task_learner
from medfast.data.boxes import detection_dls
from medfast.models.detectors import create_detector
from medfast.tasks.detect import TASK
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

ap = argparse.ArgumentParser()
ap.add_argument('--parts', default='speed,recipe')
ap.add_argument('--repeat', type=int, default=2)
ap.add_argument('--epochs', type=int, default=None, help='override the recipe epochs')
ap.add_argument('--arch', default=None, help='override the recipe architecture')
ap.add_argument('--size', type=int, default=None, help='override the recipe size')
ap.add_argument('--json', default=None)
args = ap.parse_args()
parts = args.parts.split(',')
def log(*a): print(*a, file=sys.stderr, flush=True)
out = {}
R = get_recipe('lungs').params

coco = data_dir()/'covid_lungs'/'lung_boxes_coco.json'
if not coco.is_file(): sys.exit(f"SKIPPED (data absent): {coco}")
df = split_by_patient(read_coco(coco), valid_pct=.2, seed=0)
tr, va = df[~df.is_valid], df[df.is_valid]
log(f"{len(tr)} training and {len(va)} validation images")

if 'speed' in parts:
    S, bs = R.size, R.bs
    vocab = ['#na#', 'Right Lung', 'Left Lung']
    def load(r):
        a = read_image(r.item, channels=3, size=S)
        return torch.from_numpy(a).permute(2, 0, 1).float()/255, resize_boxes(r.bboxes, (r.width, r.height), (S, S))
    X, Y = zip(*[load(r) for r in tr.itertuples()])
    T = [dict(boxes=torch.tensor(b, dtype=torch.float32), labels=torch.tensor([vocab.index(l) for l in r.labels])) for b, r in zip(Y, tr.itertuples())]
    XV, YV = zip(*[load(r) for r in va.itertuples()])

    def plain_epoch():
        seed_everything(0)
        m = create_detector(R.arch, 2, size=S)
        opt = torch.optim.AdamW(m.parameters(), lr=R.lr, weight_decay=0.01)
        n = (len(X) + bs - 1)//bs
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=R.lr, total_steps=n)
        t = time.perf_counter()
        m.train(); idx = list(range(len(X))); random.shuffle(idx)
        for i in range(0, len(idx), bs):
            j = idx[i:i+bs]
            loss = sum(m([X[k] for k in j], [T[k] for k in j]).values())
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        m.eval()
        with torch.no_grad(): dets = [d for i in range(0, len(XV), bs) for d in m(list(XV[i:i+bs]))]
        detection_metrics([(d['boxes'].numpy(), d['scores'].numpy(), d['labels'].tolist()) for d in dets], [(b, [vocab.index(l) for l in r.labels]) for b, r in zip(YV, va.itertuples())])
        return time.perf_counter() - t

    def learner_epoch(aug, lean=True):
        seed_everything(0)
        dls = detection_dls(df, S, R.item_size if aug else S, bs, aug=aug)
        learn = task_learner(dls, TASK, R.replace(precision='fp32', lean=lean))
        t = time.perf_counter()
        with learn.no_logging(): learn.fit_one_cycle(1, R.lr)
        return time.perf_counter() - t

    runs = {'plain PyTorch loop, preloaded tensors, no augmentation': plain_epoch,
            'medfast learner, no augmentation': lambda: learner_epoch(False),
            "medfast learner, the recipe's augmentation": lambda: learner_epoch(True),
            "medfast learner, augmentation, torchvision's default heads": lambda: learner_epoch(True, lean=False)}
    best = {k: float('inf') for k in runs}
    for rep in range(args.repeat):
        for k, f in runs.items():
            dt = f(); best[k] = min(best[k], dt); log(f"  {k}: {dt:.1f} s")
    base = len(tr)/best['plain PyTorch loop, preloaded tensors, no augmentation']
    print(f"\n(a) training throughput, {R.arch} from scratch, {S} px, batch {bs}, fp32, one epoch ({len(tr)} images) + validation ({len(va)}), best of {args.repeat}\n")
    print("| loop | epoch | images/s | vs plain loop |\n|---|---|---|---|")
    for k in runs:
        print(f"| {k} | {best[k]:.1f} s | {len(tr)/best[k]:.1f} | {len(tr)/best[k]/base:.2f} |")
    out['speed'] = {k: dict(seconds=round(v, 2), images_per_s=round(len(tr)/v, 2)) for k, v in best.items()}

if 'recipe' in parts:
    over = {k: v for k, v in dict(epochs=args.epochs, arch=args.arch, size=args.size).items() if v is not None}
    t = time.perf_counter()
    learn = train(df, 'lungs', **over)
    dt = time.perf_counter() - t
    m, h = learn.run_record.valid, learn.run_record.history[-1]
    r = learn.run_record.params.to_dict()
    print(f"\n(b) recipe 'lungs' ({r['arch']}, {r['size']} px, {r['epochs']} epochs, batch {r['bs']}, lr {r['lr']}) on {len(tr)} training / {len(va)} validation images\n")
    print("| wall time | train images/s | val mAP@0.5 (VOC 2010) | val COCO mAP@[.5:.95] | AP@0.5 Right Lung | AP@0.5 Left Lung |\n|---|---|---|---|---|---|")
    print(f"| {dt/60:.1f} min | {h['train_images_per_s']} | {m['map50']:.3f} | {m['map']:.3f} | {m['ap50']['Right Lung']:.3f} | {m['ap50']['Left Lung']:.3f} |")
    per_epoch = [dict(zip(learn.recorder.metric_names[1:], [round(float(x), 4) for x in v])) for v in learn.recorder.values]
    out['recipe'] = dict(minutes=round(dt/60, 2), **{k: m[k] for k in ('map50', 'map', 'map50_coco', 'ap50')}, train_images_per_s=h['train_images_per_s'], epochs=per_epoch)

save('detection', out, args, args.json)
