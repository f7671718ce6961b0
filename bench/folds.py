"""Folds and ensembles: does a K-fold run's cross-validation score predict the figure on data no model saw, and does the fold
ensemble beat one model? What `medfast train DATA --folds K --run RUN` does (the planned recipe, one time budget for all K
models), then `medfast evaluate RUN` on a held-out part.

Sets (each split into a part the fold run trains on and a held-out part that no model sees while training or deciding):
  retinamnist  RetinaMNIST: the fold run gets train_* (1,080 fundus photographs, five grades); held out: val_* (the official split)
  chest        chest_xray_224/train: 20% of the patients held out (stratified by label, seed 0); the fold run gets the rest

For each metric: the cross-validation mean and standard deviation over the K folds; the held-out figure of the ensemble (the K
models' probabilities averaged, its thresholds fitted on the out-of-fold predictions where the recipe fits any); the held-out
figures of the K models one by one (mean, min, max); whether the ensemble's held-out figure lies within the CV mean +- 2 std; and
the ensemble's gain over the mean single model.

Run: `python bench/folds.py [--minutes 15] [--folds 5] [--only retinamnist,chest]`; writes bench/results/folds.json.
"""
import argparse, contextlib, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
warnings.filterwarnings('ignore')

from results import save
from medfast.core import data_dir
from medfast.data.tables import items_from_npz, items_from_folder, split_by_patient
from medfast.engine.plan import make_plan
from medfast.engine.learner import evaluate
from medfast.engine.ensemble import load_models
from medfast.app.folds import train_folds
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

ap = argparse.ArgumentParser()
ap.add_argument('--minutes', type=float, default=15., help='the training budget of each fold run (all K models together)')
ap.add_argument('--folds', type=int, default=5)
ap.add_argument('--only', default='retinamnist,chest')
args = ap.parse_args()
def log(*a): print(*a, file=sys.stderr, flush=True)
TMP = Path(tempfile.mkdtemp())
METRICS = ('accuracy', 'balanced_accuracy', 'auroc', 'kappa')

def retinamnist():
    df = items_from_npz(data_dir()/'medmnist'/'retinamnist_trainval.npz', ('train', 'val'))
    return df[df.split == 'train'].reset_index(drop=True), df[df.split == 'val'].reset_index(drop=True), 'fundus'

def chest():
    t = split_by_patient(items_from_folder(data_dir()/'chest_xray_224'/'train', preset='chest_xray'), valid_pct=.2, seed=0)
    return t[~t.is_valid].reset_index(drop=True), t[t.is_valid].reset_index(drop=True), 'xray'

SETS = {'retinamnist': (retinamnist, data_dir()/'medmnist'/'retinamnist_trainval.npz'), 'chest': (chest, data_dir()/'chest_xray_224'/'train')}

rows = []
for ds in args.only.split(','):
    make, needs = SETS[ds]
    if not Path(needs).exists(): log(f"SKIPPED {ds} (data absent): {needs}"); continue
    table, held, recipe = make()
    plan = make_plan(table.assign(is_valid=False), recipe)
    log(f"\n== {ds}: {len(table)} rows in {args.folds} folds, {len(held)} held out\n{plan.text()}")
    t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr): info = train_folds(table, plan, args.folds, TMP/ds, budget=args.minutes, data=ds)
    minutes = (time.perf_counter() - t)/60
    ens = load_models(TMP/ds)
    with contextlib.redirect_stdout(sys.stderr):
        e, singles = evaluate(ens, held), [evaluate(m, held) for m in ens.members]
    epochs = [m.run_record.params.epochs for m in ens.members]
    for k in METRICS:
        if k not in info['cv'] or info['cv'][k]['mean'] is None: continue
        cv, s = info['cv'][k], [x[k] for x in singles]
        inside = None if e[k] is None or cv['std'] is None else abs(e[k] - cv['mean']) <= 2*cv['std']
        rows.append(dict(dataset=ds, metric=k, cv_mean=cv['mean'], cv_std=cv['std'], held_ensemble=e[k], held_single_mean=float(np.mean(s)),
                         held_single_min=float(np.min(s)), held_single_max=float(np.max(s)), within_2std=inside,
                         gain=None if e[k] is None else round(e[k] - float(np.mean(s)), 4), folds=args.folds, size=plan.params.size,
                         epochs=epochs, run_minutes=round(minutes, 1), held_out=len(held)))
        log(rows[-1])

cols = ['dataset', 'metric', 'cv_mean', 'cv_std', 'held_ensemble', 'held_single_mean', 'within_2std', 'gain']
print(pd.DataFrame(rows)[cols].round(4).to_string(index=False))
save('folds', rows, args)
