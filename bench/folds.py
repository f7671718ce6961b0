"""Folds and ensembles: does a K-fold run's cross-validation score predict the figure on data no model saw, and does the fold
ensemble beat one model? What `medfast train DATA --folds K --run RUN` does (the planned recipe, one time budget for all K
models), then `medfast evaluate RUN` on a held-out part.

Sets (each split into a part the fold run trains on and a held-out part that no model sees while training or deciding):
  retinamnist  RetinaMNIST: the fold run gets train_* (1,080 fundus photographs, five grades); held out: val_* (the official split)
  chest        chest_xray_224/train: 20% of the patients held out (stratified by label, seed 0); the fold run gets the rest

For each metric: the cross-validation mean and standard deviation over the K folds; the held-out figure of the ensemble (the K
models' probabilities averaged, its thresholds fitted on the out-of-fold predictions where the recipe fits any); the held-out
figures of the K models one by one (mean, min, max); the held-out figure's own sampling error (bootstrap over the held-out rows,
1,000 resamples: standard error and 95% interval); whether the ensemble's held-out figure lies within the CV mean +- 2 std (the
issue's test, which ignores the held-out set's own error) and within 2 combined standard errors (sqrt(std^2 + se^2)); and the
ensemble's gain over the mean single model.

`--runs DIR` keeps the fold runs in DIR; a later run with the same DIR resumes them (finished folds are loaded, not retrained), so
figures can be added without training again.

Run: `python bench/folds.py [--minutes 15] [--folds 5] [--only retinamnist,chest] [--runs DIR]`; writes bench/results/folds.json.
"""
import argparse, contextlib, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
warnings.filterwarnings('ignore')

from results import save
from medfast.core import data_dir
from medfast.data.tables import items_from_npz, items_from_folder, split_by_patient
from medfast.engine.plan import make_plan
from medfast.engine.learner import evaluate, predict
from medfast.metrics.classification import classification_metrics
from medfast.engine.ensemble import load_models
from medfast.app.folds import train_folds
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

ap = argparse.ArgumentParser()
ap.add_argument('--minutes', type=float, default=15., help='the training budget of each fold run (all K models together)')
ap.add_argument('--folds', type=int, default=5)
ap.add_argument('--only', default='retinamnist,chest')
ap.add_argument('--runs', default=None, help='keep the fold runs here; runs already here are resumed (finished folds loaded)')
args = ap.parse_args()
def log(*a): print(*a, file=sys.stderr, flush=True)
TMP = Path(args.runs) if args.runs else Path(tempfile.mkdtemp())
METRICS = ('accuracy', 'balanced_accuracy', 'auroc', 'kappa')

def retinamnist():
    df = items_from_npz(data_dir()/'medmnist'/'retinamnist_trainval.npz', ('train', 'val'))
    return df[df.split == 'train'].reset_index(drop=True), df[df.split == 'val'].reset_index(drop=True), 'fundus'

def chest():
    t = split_by_patient(items_from_folder(data_dir()/'chest_xray_224'/'train', preset='chest_xray'), valid_pct=.2, seed=0)
    return t[~t.is_valid].reset_index(drop=True), t[t.is_valid].reset_index(drop=True), 'xray'

SETS = {'retinamnist': (retinamnist, data_dir()/'medmnist'/'retinamnist_trainval.npz'), 'chest': (chest, data_dir()/'chest_xray_224'/'train')}

def bootstrap(probs, held, ens, n=1000, seed=0) -> dict:
    "Each metric's bootstrap standard error and 95% interval over the held-out rows (the ensemble's decision rule)"
    vocab = list(map(str, ens.dls.vocab)); y = np.array([vocab.index(str(l)) for l in held['label']])
    rng, draws = np.random.default_rng(seed), []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        draws.append(classification_metrics(probs[i], y[i], vocab=vocab, thresholds=ens.run_record.thresholds))
    out = {}
    for k in METRICS:
        v = np.array([d.get(k) if d.get(k) is not None else np.nan for d in draws], dtype=float)
        v = v[np.isfinite(v)]
        if len(v): out[k] = (float(v.std(ddof=1)), float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
    return out

rows = []
for ds in args.only.split(','):
    make, needs = SETS[ds]
    if not Path(needs).exists(): log(f"SKIPPED {ds} (data absent): {needs}"); continue
    table, held, recipe = make()
    plan = make_plan(table.assign(is_valid=False), recipe)
    log(f"\n== {ds}: {len(table)} rows in {args.folds} folds, {len(held)} held out\n{plan.text()}")
    t = time.perf_counter()
    again = (TMP/ds/'folds.json').is_file()
    with contextlib.redirect_stdout(sys.stderr): info = train_folds(table, plan, args.folds, TMP/ds, budget=args.minutes, resume=again, data=ds)
    minutes = info['train_minutes']
    ens = load_models(TMP/ds)
    with contextlib.redirect_stdout(sys.stderr):
        e, singles, probs = evaluate(ens, held), [evaluate(m, held) for m in ens.members], predict(ens, held)
    se = bootstrap(probs, held, ens)
    epochs = [m.run_record.params.epochs for m in ens.members]
    for k in METRICS:
        if k not in info['cv'] or info['cv'][k]['mean'] is None: continue
        cv, s = info['cv'][k], [x[k] for x in singles]
        inside = None if e[k] is None or cv['std'] is None else bool(abs(e[k] - cv['mean']) <= 2*cv['std'])
        both = None if e[k] is None or cv['std'] is None else bool(abs(e[k] - cv['mean']) <= 2*np.hypot(cv['std'], se[k][0]))
        rows.append(dict(dataset=ds, metric=k, cv_mean=cv['mean'], cv_std=cv['std'], held_ensemble=e[k], held_single_mean=float(np.mean(s)),
                         held_single_min=float(np.min(s)), held_single_max=float(np.max(s)), within_2std=inside,
                         held_se=round(se[k][0], 4), held_ci95=[round(se[k][1], 4), round(se[k][2], 4)], within_2se=both,
                         gain=None if e[k] is None else round(e[k] - float(np.mean(s)), 4), folds=args.folds,
                         size=sorted({m.run_record.params.size for m in ens.members}),   # as trained: the budget may have chosen the cheaper size
                         epochs=epochs, train_minutes=round(minutes, 1), held_out=len(held)))
        log(rows[-1])

cols = ['dataset', 'metric', 'cv_mean', 'cv_std', 'held_ensemble', 'held_se', 'held_single_mean', 'within_2std', 'within_2se', 'gain']
print(pd.DataFrame(rows)[cols].round(4).to_string(index=False))
save('folds', rows, args)
