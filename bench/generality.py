"""Generality of the default: on each labelled classification set of ../shared/data, what `medfast train` does with no flag (the
planned recipe, `medfast.engine.plan`) against the input's named recipe trained as it is (the default before planning) and against
stock fastai, each under the same time budget on this machine, side by side in one run.

Sets (each split into a training part and a held-out part that no contender sees while training or deciding):
  retinamnist    RetinaMNIST, 28 px colour fundus photographs, five grades: trains on train_*, scored on val_* (the official split)
  chest28        the chest X-rays of chest_xray_224/train made into a MedMNIST-style npz: grey, 28 px, two classes, split by
                 patient (85/15). The npz input's recipe is `fundus` (five grades, colour, any rotation): a set of another kind,
                 as the held-out sets the planner is judged on are.
  adrenal28/64   AdrenalMNIST3D at 28^3 and 64^3, two classes: trains on train_*, scored on val_*
Contenders:
  planned        make_plan(table, input recipe) trained with train(..., budget): what `medfast train --npz X.npz` does
  recipe         the input's recipe as it is (fundus / medmnist3d), its epochs cut to the same budget
  stock fastai   vision_learner('resnet18', pretrained=False) at the planned size, aug_transforms(), fit_one_cycle for the epochs
                 that fit the budget (measured the same way); 2D sets only (fastai has no 3D learner)
Each contender's validation inside training is its own split of the training part (the held-out part is scored once, at the end).

Run: `python bench/generality.py [--minutes 2] [--only retinamnist,chest28,adrenal28,adrenal64]`; writes bench/results/generality.json.
"""
import argparse, contextlib, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
warnings.filterwarnings('ignore')

from results import save
from medfast.core import data_dir, seed_everything
from medfast.io.images import read_image
from medfast.data.tables import items_from_npz, items_from_folder, split_by_patient, split_stratified
from medfast.engine.plan import make_plan, batch_seconds, budget_epochs
from medfast.engine.learner import train, predict
from medfast.metrics.classification import classification_metrics
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

ap = argparse.ArgumentParser()
ap.add_argument('--minutes', type=float, default=2., help='the training budget of every contender')
ap.add_argument('--only', default='retinamnist,chest28,adrenal28,adrenal64')
args = ap.parse_args()
def log(*a): print(*a, file=sys.stderr, flush=True)
TMP = Path(tempfile.mkdtemp())

def chest28() -> Path:
    "chest_xray_224/train as a MedMNIST-style npz (grey 28 px, 0 normal / 1 pneumonia), split 85/15 by patient"
    t = split_by_patient(items_from_folder(data_dir()/'chest_xray_224'/'train', preset='chest_xray'), valid_pct=.15, seed=0)
    x = np.stack([read_image(i, channels=1, size=28) for i in t['item']]); y = (t['label'] == 'PNEUMONIA').values.astype(int)[:, None]
    tr, va = ~t.is_valid.values, t.is_valid.values
    np.savez(TMP/'chest28.npz', train_images=x[tr], train_labels=y[tr], val_images=x[va], val_labels=y[va])
    return TMP/'chest28.npz'

SETS = {'retinamnist': (lambda: data_dir()/'medmnist'/'retinamnist_trainval.npz', 'fundus'), 'chest28': (chest28, 'fundus'),
        'adrenal28': (lambda: data_dir()/'medmnist'/'adrenalmnist3d_trainval.npz', 'medmnist3d'),
        'adrenal64': (lambda: data_dir()/'medmnist'/'adrenalmnist3d_64_trainval.npz', 'medmnist3d')}

def tables(npz):
    "The training part (with its own validation split) and the held-out part (val_*)"
    df = items_from_npz(npz, ('train', 'val'))
    held = df[df.split == 'val'].reset_index(drop=True)
    return split_stratified(df[df.split == 'train'].drop(columns='split').reset_index(drop=True), .15, seed=42), held

def scored(probs, held, vocab) -> dict:
    y = np.array([list(map(str, vocab)).index(str(l)) for l in held['label']])
    m = classification_metrics(probs, y)
    return {k: round(float(v), 4) if (v := m.get(k)) is not None and v == v else None for k in ('accuracy', 'auroc', 'balanced_accuracy')}   # NaN: undefined

def medfast_row(name, table, held, recipe):
    seed_everything(42); t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr): learn = train(table, recipe, budget=args.minutes)
    s = time.perf_counter() - t; p = learn.run_record.params
    with contextlib.redirect_stdout(sys.stderr): probs = predict(learn, held)            # the held-out images' progress bar to the log
    return dict(contender=name, classes=len(learn.dls.vocab), epochs=p.epochs, size=p.size, channels=getattr(p, 'channels', None), minutes=round(s/60, 2),
                **scored(probs, held, learn.dls.vocab))

def stock_row(table, held, size):
    from fastai.vision.all import DataBlock, ImageBlock, CategoryBlock, ColReader, ColSplitter, Resize, aug_transforms, vision_learner
    from PIL import Image
    def png(it):
        f = TMP/'png'/f"{it.key}_{it.index}.png"
        if not f.exists(): f.parent.mkdir(exist_ok=True); Image.fromarray(read_image(it)).save(f)
        return f
    seed_everything(42)
    d = table.assign(f=[png(i) for i in table['item']], label=table['label'].astype(str))
    dls = DataBlock((ImageBlock, CategoryBlock), get_x=ColReader('f'), get_y=ColReader('label'), splitter=ColSplitter('is_valid'),
                    item_tfms=Resize(size), batch_tfms=aug_transforms()).dataloaders(d, bs=64, num_workers=0)
    learn = vision_learner(dls, 'resnet18', pretrained=False)
    ep, _ = budget_epochs(batch_seconds(learn), (len(dls.train), len(dls.valid)), 1000, args.minutes)
    t = time.perf_counter()
    with learn.no_bar(), contextlib.redirect_stdout(sys.stderr): learn.fit_one_cycle(ep)
    s = time.perf_counter() - t
    probs = learn.get_preds(dl=dls.test_dl(held.assign(f=[png(i) for i in held['item']]), with_labels=False))[0].numpy()
    return dict(contender='stock fastai', classes=len(dls.vocab), epochs=ep, size=size, channels=3, minutes=round(s/60, 2), **scored(probs, held, dls.vocab))

rows = []
for ds in args.only.split(','):
    make, recipe = SETS[ds]; npz = make()
    if not Path(npz).is_file(): log(f"SKIPPED {ds} (data absent): {npz}"); continue
    table, held = tables(npz)
    plan = make_plan(table, recipe)
    log(f"\n== {ds}: {len(table)} training rows, {len(held)} held out\n{plan.text()}")
    changed = ', '.join(f"{c.field}={c.value}" for c in plan.choices if c.changed) or 'nothing'   # the data's rules, before the budget's
    for row in (medfast_row('planned', table, held, plan), medfast_row(f"recipe '{recipe}'", table, held, recipe)):
        rows.append(dict(dataset=ds, changed=changed if row['contender'] == 'planned' else '', **row)); log(rows[-1])
    if plan.params.dim == 2:
        rows.append(dict(dataset=ds, changed='', **stock_row(table, held, plan.params.size))); log(rows[-1])

cols = ['dataset', 'contender', 'classes', 'epochs', 'size', 'minutes', 'accuracy', 'balanced_accuracy', 'auroc']
print(pd.DataFrame(rows)[cols].to_string(index=False))
save('generality', rows, args)
