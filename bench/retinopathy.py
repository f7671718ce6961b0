"""Diabetic retinopathy grading on RetinaMNIST, on CPU: the three ways to model the grades, side by side in one run.

Data: ../shared/data/medmnist/retinamnist_trainval.npz (DeepDRiD fundus photographs at 28x28x3, grades 0-4, 1,080 train /
120 val, the official MedMNIST split). Its test split is held out; this script never sees it.

Every contender is medfast.engine.learner.train with the 'fundus' recipe (resnet18 from scratch, colour, 32 px, flips and any
rotation, label smoothing 0.1, one-cycle, bf16 autocast + channels-last) and one objective:
  ce         5-class cross-entropy, decision = most probable grade
  weighted   cross-entropy with inverse-frequency class weights
  ordinal    cumulative-logit (proportional-odds) head; decision = expected grade cut at thresholds fitted to maximize
             quadratic weighted kappa on the validation split
Two measurements per contender:
  official   train on train_*, report on val_* (120 images: one image is 0.8 points of accuracy)
  5-fold CV  stratified 5-fold cross-validation over all 1,200 images (each image predicted once by a model that did not see it);
             for 'ordinal' each fold's thresholds are fitted on the other folds' predictions, so no image decides its own cut
The ordinal row also shows its argmax decision, and the ce row its kappa-fitted decision, to separate head from thresholds.

Run: `python bench/retinopathy.py [--folds 5] [--only ce,weighted,ordinal] [--json rows.json]`.
"""
import argparse, contextlib, json, sys, time, warnings
import numpy as np
warnings.filterwarnings('ignore')
from sklearn.model_selection import StratifiedKFold

from results import save
from medfast.core import data_dir
from medfast.data.tables import items_from_npz, split_by_folder
from medfast.engine.learner import train as train_model, predict
from medfast.metrics.classification import classification_metrics, expected_grade, apply_thresholds
from medfast.metrics.ordinal import fit_thresholds
from fastai.learner import defaults
defaults.callbacks = [c for c in defaults.callbacks if c.__name__ != 'ProgressCallback']

ap = argparse.ArgumentParser()
ap.add_argument('--folds', type=int, default=5, help='cross-validation folds (0: official split only)')
ap.add_argument('--only', default='ce,weighted,ordinal')
ap.add_argument('--epochs', type=int, default=None, help='override the recipe epochs')
ap.add_argument('--json', default=None)
args = ap.parse_args()

npz = data_dir()/'medmnist'/'retinamnist_trainval.npz'
if not npz.is_file(): sys.exit(f"SKIPPED (data absent): {npz}")
df = items_from_npz(npz, ('train', 'val'))
y_all = df.label.values.astype(int)
over = dict(epochs=args.epochs)   # None keeps the recipe's
def log(*a): print(*a, file=sys.stderr, flush=True)

def train(d, objective):
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):   # fastai's epoch tables to the log, the result tables to stdout
        warnings.simplefilter('ignore'); return train_model(d, 'fundus', objective=objective, **over)

def fmt(m): return {k: round(float(m[k]), 4) for k in ('accuracy', 'auroc', 'kappa_quadratic', 'kappa', 'recall_3', 'recall_4')}

rows = []
for obj in args.only.split(','):
    # official split
    d = split_by_folder(df, valid='val')
    t = time.perf_counter(); learn = train(d, obj); sec = time.perf_counter() - t
    v = d[d.is_valid]; yv = v.label.values.astype(int)
    p = predict(learn, v)
    row = dict(objective=obj, train_s=round(sec, 1), official=fmt(learn.run_record.valid), official_argmax=fmt(classification_metrics(p, yv)))
    log(obj, 'official', row['official'], f"{sec:.0f} s")
    # cross-validation
    if args.folds:
        oof = np.zeros((len(df), 5)); secs = []
        folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(np.zeros(len(df)), y_all))
        for k,(tr,va) in enumerate(folds):
            d = df.copy(); d['is_valid'] = False; d.loc[va, 'is_valid'] = True
            t = time.perf_counter(); learn = train(d, obj); secs.append(time.perf_counter() - t)
            oof[va] = predict(learn, d.loc[va])
            log(obj, f'fold {k}', f"{secs[-1]:.0f} s")
        s = expected_grade(oof); pt = np.zeros(len(df), int)
        for tr,va in folds: pt[va] = apply_thresholds(s[va], fit_thresholds(y_all[tr], s[tr], 5))
        am = classification_metrics(oof, y_all)
        cut = dict(classification_metrics(np.eye(5)[pt], y_all), auroc=am['auroc'])   # decisions from the thresholds, AUROC from the probabilities
        row.update(cv_argmax=fmt(am), cv_thresholds=fmt(cut), cv_train_s=round(float(np.mean(secs)), 1))
        log(obj, 'cv', row['cv_argmax'], row['cv_thresholds'])
    rows.append(row)

def table(key, title):
    print(f"\n{title}\n")
    print("| objective | decision | accuracy | macro AUROC | QWK | kappa | recall 3 | recall 4 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        for k,lab in key(r):
            if k in r: m = r[k]; print(f"| {r['objective']} | {lab} | {m['accuracy']:.3f} | {m['auroc']:.3f} | {m['kappa_quadratic']:.3f} | {m['kappa']:.3f} | {m['recall_3']:.3f} | {m['recall_4']:.3f} |")
table(lambda r: [('official', 'thresholds' if r['objective'] == 'ordinal' else 'argmax')] + ([('official_argmax', 'argmax')] if r['objective'] == 'ordinal' else []),
      "Official split (train 1,080 / val 120)")
if args.folds:
    table(lambda r: [('cv_argmax', 'argmax'), ('cv_thresholds', 'fitted thresholds')], f"{args.folds}-fold cross-validation over 1,200 images (out-of-fold)")
print("\n| objective | training seconds (official split) | per CV fold |\n|---|---|---|")
for r in rows: print(f"| {r['objective']} | {r['train_s']:.1f} | {r.get('cv_train_s', float('nan')):.1f} |")
save('retinopathy', rows, args, args.json)
