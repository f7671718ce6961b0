"""Write BENCHMARKS.md from the JSON that the scripts in bench/ write to bench/results/ (no figure is typed by hand).

Each section: what the benchmark compares (prose without figures), where it ran (command, machine, date, from the JSON), and its
tables. A benchmark without results is listed with the command that makes them. `python tools/benchmarks.py --check` exits 1 when
BENCHMARKS.md is out of date instead of writing it.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/'bench'/'results'

def table(head, rows):
    return '\n'.join(['| ' + ' | '.join(head) + ' |', '|' + '---|'*len(head)] + ['| ' + ' | '.join(map(str, r)) + ' |' for r in rows])

def where(doc):
    m = doc['machine']
    dev = f"{m['cpu']}, {m['cpus']} CPUs, {m['threads']} torch threads" + (f", GPU {m['gpu']}" if m.get('gpu') else '')
    load = f" Load average over the last 15 minutes of the run: {m['load_avg_15min']} (other work shared the CPUs when it exceeds the threads)." if 'load_avg_15min' in m else ''
    return f"`{doc['command']}` on {doc['date']}: {dev}; Python {m['python']}, torch {m['torch']}, numpy {m.get('numpy', '?')}.{load}"

def decoders(r):
    files, tot = r['files'], r['decoded']
    plugins = [p for p in tot]
    t = table(['decoder plugin', 'files decoded', 'of'], [[p, tot[p], len(files)] for p in plugins])
    only = [f['file'] for f in files if f['gdcm'] == 'ok' and f['pylibjpeg'] != 'ok' and f['pydicom'] != 'ok']
    return (f"Each compressed file in pydicom's test data (and the RSNA radiograph) tried with each decoder plugin alone.\n\n{t}\n\n"
            f"The pylibjpeg family with pydicom's own RLE decoder reads {r['pylibjpeg_family']} of {len(files)}; files only GDCM reads: "
            f"{', '.join(only) or 'none'}. That is why the `dicom` extra is the pylibjpeg family and GDCM is not needed.")

def dicom_read(rows):
    t = table(['file', 'method', 'ms / image', 'vs pydicom raw', 'vs medfast'],
              [[r['file'], r['method'], f"{r['ms']:.3f}", f"{r['vs_pydicom']:.2f}x", f"{r['vs_medfast']:.2f}x"] for r in rows])
    med = [r for r in rows if r['method'] == 'medfast']
    fa = [r for r in rows if r['method'].startswith('fastai')]
    return ("Median time per image over interleaved rounds in one process. medfast applies the modality LUT, the header window and "
            "MONOCHROME1 and returns float32; raw pydicom applies no LUT and returns integers; fastai.medical's `scaled_px` and `windowed` "
            f"are the fastai way.\n\n{t}\n\nmedfast against raw pydicom: {min(r['vs_pydicom'] for r in med):.2f}x to "
            f"{max(r['vs_pydicom'] for r in med):.2f}x the time; fastai.medical against medfast: {min(r['vs_medfast'] for r in fa):.2f}x to "
            f"{max(r['vs_medfast'] for r in fa):.2f}x the time.")

def chest_xray(rows):
    tp = [r for r in rows if 'ratio_vs_plain' in r or r.get('contender', '').startswith('plain loop')]
    full = [r for r in rows if 'seen_accuracy' in r]
    screen = [r for r in rows if 'split' in r]
    out = []
    if tp:
        out.append("Training throughput of the `'xray'` model against a plain PyTorch loop with the same model, batch, precision and layout, "
                   "fed from preloaded tensors with its own random affine (median of interleaved rounds):\n\n" +
                   table(['loop', 'train images/s', 'vs plain loop'], [[r['contender'], r['train_img_s'], f"{r.get('ratio_vs_plain', 1):.2f}"] for r in tp]))
    if full:
        r0 = full[0]
        out.append(f"The four contenders, each trained once from scratch within the same {r0.get('budget_min', 15):g}-minute training budget on a split that "
                   f"holds one acquisition group out whole (`{r0.get('hold_out', 'NORMAL2')}`: normal radiographs of a separate batch) plus a patient split "
                   f"of the rest, and scored twice from that one model: on the {r0['n_seen']} validation images of the groups it saw (the random-split "
                   f"figures), and on all {r0['n_valid']} validation images, the unseen group included (the shift-aware figures; the last column "
                   "re-weights accuracy to the official test split's class prior, 37.5 % normal). The medfast recipes run with their own epochs, "
                   "as `medfast train` runs them and `medfast evaluate` scores them (the new default with the test-time augmentation its recipe asks for; its second row is the same model predicted with `--no-tta`); the two baselines fill the budget:\n\n" +
                   table(['contender', 'epochs', 'train min', 'seen: accuracy', 'seen: AUROC', 'all: accuracy', 'all: AUROC', 'sensitivity', 'specificity',
                          'specificity, unseen group', 'ECE', 'acc. at test prior'],
                         [[r['contender'], r['epochs'], r['train_min'], r['seen_accuracy'], r['seen_auroc'], r['accuracy'], r['auroc'], r['sensitivity'],
                           r['specificity'], r['held_specificity'], r['ece'], r['accuracy_test_prior']] for r in full]))
    if screen:
        out.append("Recipe screening on the shift-aware protocol (short runs at a small size, one seed): each variant of the `'xray'` recipe "
                   "(`base`: the old default's augmentation; `strong`: today's default) trained twice, on the patient split and on "
                   "a split that holds out one acquisition group whole (the file-name family `NORMAL2`, normal radiographs of a separate batch, "
                   "plus a patient split of the rest). ECE: expected calibration error; the last column re-weights accuracy to the official "
                   "test split's class prior.\n\n" +
                   table(['variant', 'validation', 'images', 'accuracy', 'AUROC', 'balanced acc.', 'sensitivity', 'specificity', 'ECE', 'acc. at test prior'],
                         [[r['variant'], r['split'], r['n_valid'], r['accuracy'], r['auroc'], r['balanced_accuracy'], r['sensitivity'], r['specificity'], r['ece'], r['accuracy_test_prior']] for r in screen]))
    return '\n\n'.join(out)

def retinopathy(rows):
    def m(x): return [f"{x['accuracy']:.3f}", f"{x['auroc']:.3f}", f"{x['kappa_quadratic']:.3f}", f"{x['recall_3']:.3f}", f"{x['recall_4']:.3f}"]
    off = [[r['objective'], 'thresholds' if r['objective'] == 'ordinal' else 'most probable grade', *m(r['official'])] for r in rows]
    head = ['objective', 'decision', 'accuracy', 'AUROC', 'QWK', 'recall grade 3', 'recall grade 4']
    out = ["The `'fundus'` recipe on RetinaMNIST with each objective: the official split (1,080 train / 120 validation), then stratified "
           "cross-validation over all 1,200 images, with each fold's kappa thresholds fitted on the other folds' predictions. The test split is held out.\n\n"
           "Official split:\n\n" + table(head, off)]
    cv = [[r['objective'], lab, *m(r[k])] for r in rows for k, lab in (('cv_argmax', 'most probable grade'), ('cv_thresholds', 'kappa thresholds')) if k in r]
    if cv: out.append("Cross-validation (out-of-fold):\n\n" + table(head, cv))
    out.append("Training seconds per model: " + ', '.join(f"{r['objective']} {r['train_s']}" for r in rows) + '.')
    return '\n\n'.join(out)

def volumes(r):
    out = []
    if 'load' in r:
        l = r['load']
        out.append(f"(a) One epoch of the {l['series']} real DICOM series ({l['dicom_files']} files) preprocessed to a fixed shape, from the files and from "
                   "the float16 `VolumeCache`:\n\n" + table(['source', 'epoch', 'ratio', 'bytes'], [
                       ['DICOM files + `VolumePrep`', f"{l['dicom_epoch_s']} s", '1', f"{l['float32_bytes']:,} as float32"],
                       ['`VolumeCache` (float16 `.npy`)', f"{l['cache_epoch_s']} s", f"{l['speedup']}x faster", f"{l['cache_bytes']:,} ({l['size_ratio']} of float32)"]]) +
                   f"\n\nThe cache is built once ({l['build_s']} s); its largest rounding error on [0, 1] volumes is {l['max_abs_error']}.")
    if 'speed' in r:
        s = r['speed']
        out.append(f"(b) Training throughput of the same 3D model ({s['arch']}, {'x'.join(map(str, s['shape']))}, fp32) on AdrenalMNIST3D, alternating, best of two epochs:\n\n" +
                   table(['loop', 'volumes/s', 'vs plain loop'], [['plain PyTorch loop over a preloaded tensor', s['loop_vol_s'], '1.00'],
                                                                 ['medfast (`volume_dls` + `task_learner`)', s['learner_vol_s'], f"{s['ratio']:.2f}"]]))
    if 'recipe' in r:
        c = r['recipe']; rc = c['recipe']
        out.append(f"(c) The `'medmnist3d'` recipe ({rc['arch']} at {rc['size']}^3, {rc['epochs']} epochs) on the official split; the test split is held out:\n\n" +
                   table(['train time', 'val AUROC', 'accuracy', 'sensitivity', 'specificity', 'balanced accuracy'],
                         [[f"{c['seconds']/60:.1f} min", c['auroc'], c['accuracy'], c['sensitivity'], c['specificity'], c['balanced_accuracy']]]))
    return '\n\n'.join(out)

def volume_patches(r):
    p = r['patches']; rows = p['rows']
    first = {m: next(q for q in rows if q['method'] == m) for m in ('memmap', 'whole')}
    t = table(['volume', 'float16 MB each', 'method', 'peak RSS of the data path', 'vs smallest volume', 'patches/s sampled', 'patches/s trained'],
              [[f"{q['size']}^3", q['volume_mb'], 'patch from the memory map' if q['method'] == 'memmap' else 'whole volume, then the patch',
                f"{q['rss_mb']} MB", f"{q['rss_mb']/max(.1, first[q['method']]['rss_mb']):.1f}x", q['sample_per_s'], q['train_per_s']] for q in rows])
    return (f"{p['patches']} training patches of {'x'.join(map(str, p['patch']))} (half centred on the foreground) from four real GE series resampled to "
            "each size and cached as float16. Peak RSS is the largest resident set (mapped file pages included) while a sample is alive, above the RSS before the first volume was read, in a fresh process "
            f"without a model (the data path alone); the last column adds a {p['arch']} training step on batches of {p['bs']}, in another process.\n\n" + t)

def scale(r):
    out = []
    if 'cache' in r:
        rows = r['cache']; first = {m: next(q for q in rows if q['cache'] == m) for m in ('memory', 'disk')}
        out.append("(a) The data path of one training epoch of `'xray_quick'` (64 px grey items presized to 72, oversampled, batches of 64, "
                   "augmentation, no model) against the dataset's size, the chest set repeated under new names; each in a fresh process. "
                   "Peak RSS above the process's before the first image (mapped file pages included):\n\n" +
                   table(['images', 'cache', 'preload', 'peak RSS above start', 'vs 1x', 'images/s'],
                         [[f"{q['images']:,}", q['cache'], f"{q['preload_s']} s", f"{q['rss_mb']} MB", f"{q['rss_mb']/max(.1, first[q['cache']]['rss_mb']):.1f}x",
                           q['epoch_img_s']] for q in rows]))
    if 'decode' in r:
        out.append("(b) `preload` into memory with one and with two decode processes, best of two, alternating: cheap images (small JPEGs, "
                   "where starting processes and sending arrays back costs what decoding saves) and costly ones (a 1024 px JPEG-compressed DICOM):\n\n" +
                   table(['images', 'count', '1 process', '2 processes', 'speed-up'], [[d['images'], f"{d['n']:,}", f"{d['one_s']} s", f"{d['two_s']} s", f"{d['speedup']:.2f}x"] for d in r['decode']]))
    if 'ddp' in r:
        rows = r['ddp']
        out.append("(c) `medfast train --recipe xray_quick --epochs 2` on the 5,216 radiographs (patient split) in one process and with `--processes 2` "
                   "(two gloo processes on the same 2 cores, each with batches of 64):\n\n" +
                   table(['processes', 's / epoch', 'vs one', 'accuracy', 'AUROC', 'sensitivity', 'specificity', 'shards of the last epoch'],
                         [[q['processes'], q['epoch_s'], f"{q.get('epoch_ratio', 1.0):.2f}", q['accuracy'], q['auroc'], q['sensitivity'], q['specificity'],
                           '' if not q.get('shards') else f"{q['shards']['items']} items, {q['shards']['shared']} shared, classes {q['shards']['classes']}"] for q in rows]))
    return '\n\n'.join(out)

def gpu(r):
    return (f"{r['gpu']}: {r['arch']} at {r['size']} px, batch {r['bs']}, {r['precision']}, channels-last. The plain loop uses AMP with a "
            "gradient scaler, channels-last, pinned memory and non-blocking copies, and the same GPU batch augmentation:\n\n" +
            table(['loop', 'images/s', 'vs plain loop'], [['plain PyTorch', r['loop_img_s'], '1.00'], ['medfast fastai learner', r['learner_img_s'], f"{r['ratio']:.2f}"]]))

def speed_table(s:dict) -> str:
    "Epoch time, images/s and the ratio to the plain loop of each contender"
    base = next(v for k, v in s.items() if k.startswith('plain'))
    return table(['loop', 'epoch', 'images/s', 'vs plain loop'], [[k, f"{v['seconds']} s", v['images_per_s'], f"{v['images_per_s']/base['images_per_s']:.2f}"] for k, v in s.items()])

def detection(r):
    out = []
    if 'speed' in r:
        out.append("(a) One epoch of the `'lungs'` detector plus scoring the validation images, alternating, best of two:\n\n" + speed_table(r['speed']))
    if 'recipe' in r:
        c = r['recipe']
        out.append("(b) The `'lungs'` recipe, measured in the original pixels of the validation images:\n\n" +
                   table(['train time', 'train images/s', 'mAP@0.5 (VOC 2010)', 'COCO mAP@[.5:.95]', *[f"AP@0.5 {k}" for k in c['ap50']]],
                         [[f"{c['minutes']} min", c['train_images_per_s'], f"{c['map50']:.3f}", f"{c['map']:.3f}", *[f"{v:.3f}" for v in c['ap50'].values()]]]))
    return '\n\n'.join(out)

def segmentation(r):
    out = []
    if 'speed' in r:
        out.append("(a) One epoch of the `'lungseg'` U-Net plus scoring the validation images, alternating, best of the repeats:\n\n" + speed_table(r['speed']))
    if 'window' in r:
        out.append("(b) Sliding-window inference (overlap 0.5, Gaussian blending), untrained weights:\n\n" +
                   table(['model', 'input', 'window', 'seconds', 'megavoxels/s'], [[w['model'], w['input'], w['window'], w['seconds'], w['mvox_per_s']] for w in r['window']]))
    if 'recipe' in r:
        c = r['recipe']
        out.append(f"(c) The `'lungseg'` recipe ({c['epochs']} epochs at {c['size']} px) on {c['train_images']} training images; Dice, IoU and HD95 at the original size "
                   f"of the {c['valid_images']} validation images (held-out patients):\n\n" +
                   table(['train time', 'train images/s', 'mean Dice', 'median Dice', 'worst Dice', 'IoU', 'HD95 (px)'],
                         [[f"{c['minutes']} min", c['train_images_per_s'], f"{c['dice']:.4f}", f"{c['dice_median']:.4f}", f"{c['dice_min']:.4f}", f"{c['iou']:.4f}", c['hd95']]]))
    return '\n\n'.join(out)

def segmentation3d(r):
    out = []
    if 'window' in r:
        out.append("(a) Sliding-window inference with one network (medfast's planned 3D U-Net, random weights) and one window "
                   f"({'x'.join(map(str, r['patch']))}, overlap 0.5, Gaussian, 4 windows per pass): medfast's `sliding_window` against MONAI's "
                   "`sliding_window_inference`, alternated, best of the repeats; ratio above 1: medfast faster. Argmax agreement: the share of voxels "
                   "whose most probable class is the same in both outputs.\n\n" +
                   table(['input', 'volumes', 'voxels', 'medfast Mvoxels/s', 'MONAI Mvoxels/s', 'ratio', 'argmax agreement'],
                         [[w['input'], w['volumes'], w['voxels'], w['medfast_mvox_s'], w['monai_mvox_s'], f"{w['ratio']}x", w['argmax_agreement']] for w in r['window']]))
    if 'nets' in r:
        out.append("(b) One training step (forward and backward) on 4 patches of 40x56x40, alternated, best of the repeats: the 3D U-Net against the first one "
                   "(`unet3d_v1`, whose last decoder stage ran past the input and back):\n\n" +
                   table(['network', 'seconds per step', 'parameters', 'speed-up over unet3d_v1'], [[n['network'], n['seconds_per_step'], n['parameters'], f"{n['speedup']}x"] for n in r['nets']]))
    if 'train' in r:
        c = r['cases']
        out.append(f"(c) Training at one wall-time budget on the same {c['train']} cases, then each of the {c['valid']} held-out cases (a fifth, by case) "
                   "segmented on its own grid and scored by the same code, Dice per class (a class absent from both scores 1, from one 0):\n\n" +
                   table(['side', 'train min', 'epochs', 'Dice anterior', 'Dice posterior', 'mean Dice', 'inference s per volume'],
                         [[t['side'], t['train_minutes'], t['epochs'], f"{t['anterior']:.4f}", f"{t['posterior']:.4f}", f"{t['mean']:.4f}", t['infer_s_per_volume']] for t in r['train']]))
    return '\n\n'.join(out)

def segmentation_cv(r):
    c = r['cv']
    t = table(['fold', 'held-out patients', 'images', 'mean Dice', 'worst Dice', 'IoU', 'HD95 (px)', 'train + evaluate min'],
              [[f['fold'], f['patients'], f['images'], f"{f['dice']:.4f}", f"{f['dice_min']:.4f}", f"{f['iou']:.4f}", f['hd95'], f['minutes']] for f in c['folds']])
    return (f"The `'lungseg'` recipe trained once per fold of a {len(c['folds'])}-fold patient-grouped split of all 90 masked images; each fold's "
            f"patients are never seen in its training. Figures at each image's original size.\n\n{t}\n\nMean Dice over folds {c['dice_mean']:.4f} "
            f"(standard deviation {c['dice_sd']:.4f}), over all held-out images {c['dice_image_weighted']:.4f}; the worst single image {c['dice_min_image']:.4f}.")

def _num(v): return v if isinstance(v, (int, float)) and v == v else None   # NaN (a metric undefined for the model) is None

def generality(rows):
    base = {r['dataset']: _num(r.get('auroc')) for r in rows if r['contender'].startswith('recipe')}
    t = table(['dataset', 'contender', 'classes', 'epochs', 'size', 'train + evaluate min', 'accuracy', 'balanced acc.', 'AUROC', 'AUROC vs recipe'],
              [[r['dataset'], r['contender'], r['classes'], r['epochs'], r['size'], r['minutes'], r['accuracy'], r.get('balanced_accuracy', ''),
                _num(r.get('auroc')) if _num(r.get('auroc')) is not None else 'undefined (empty classes)',
                f"{r['auroc']/base[r['dataset']]:.3f}x" if base.get(r['dataset']) and _num(r.get('auroc')) else ''] for r in rows])
    ch = '; '.join(f"{r['dataset']}: {r['changed']}" for r in rows if r['contender'] == 'planned')
    return ("What `medfast train --npz X.npz` does with no other flag (the plan: the input's recipe changed where the data contradicts it, "
            "then the epochs that fit the budget) against the input's recipe as it is and against stock fastai, each under the same training "
            "budget, scored on a held-out part no contender saw (RetinaMNIST and AdrenalMNIST3D: their official val split; chest28: the chest "
            f"X-rays at 28 px grey, a patient split). What the plan changed: {ch}.\n\n{t}")

def folds(rows):
    f = lambda v: '' if v is None else f'{v:.3f}' if isinstance(v, float) else str(v)
    yn = {True: 'yes', False: 'no', None: '', 'True': 'yes', 'False': 'no'}   # 'True': numpy booleans written as text by an earlier bench/folds.py
    t = table(['dataset', 'metric', 'CV mean', 'CV std', 'held out: ensemble', 'its 95% interval', 'held out: single (mean)', 'single min..max',
               'within CV mean +- 2 std', 'within 2 combined SE', 'ensemble gain'],
              [[r['dataset'], r['metric'], f(r['cv_mean']), f(r['cv_std']), f(r['held_ensemble']), f"{f(r['held_ci95'][0])}..{f(r['held_ci95'][1])}",
                f(r['held_single_mean']), f"{f(r['held_single_min'])}..{f(r['held_single_max'])}", yn[r['within_2std']], yn[r['within_2se']], f(r['gain'])] for r in rows])
    runs = '; '.join(dict.fromkeys(f"{r['dataset']}: {r['folds']} folds at {'/'.join(map(str, r['size'] if isinstance(r['size'], list) else [r['size']]))} px, epochs per fold {', '.join(map(str, r['epochs']))}, {r['train_minutes']} min of training in all, {r['held_out']} held out" for r in rows))
    return ("What `medfast train DATA --folds K --run RUN` does with no other flag (the planned recipe; one time budget for all K models), then "
            "`medfast evaluate RUN` on a held-out part no model saw (RetinaMNIST: its official val split; chest X-rays: 20% of the patients). "
            "The cross-validation score is each fold's model on its own validation fold; the ensemble averages the K models' probabilities. "
            "The held-out interval is a bootstrap over the held-out rows (its sampling error, which the CV std does not include); "
            f"'within 2 combined SE' compares the gap with 2 sqrt(CV std^2 + held-out SE^2). {runs}.\n\n{t}")

SECTIONS = [('dicom_read', 'DICOM reading speed', dicom_read), ('decoders', 'Which decoders read which compressed DICOM files', decoders),
            ('chest_xray', 'Chest X-ray pneumonia classification', chest_xray), ('retinopathy', 'Diabetic retinopathy grading', retinopathy),
            ('volumes', '3D volumes: DICOM series, the cache, AdrenalMNIST3D', volumes),
            ('volume_patches', '3D volumes at real size: patches from the memory-mapped cache', volume_patches), ('detection', 'Chest X-ray detection: lung boxes', detection),
            ('segmentation', 'Lung segmentation', segmentation),
            ('segmentation_cv', 'Lung segmentation: cross-validation by patient', segmentation_cv),
            ('segmentation3d', '3D segmentation: hippocampus, against MONAI', segmentation3d),
            ('scale', 'Scale: the image cache against dataset size, parallel decoding, two processes', scale),
            ('gpu', 'GPU training throughput', gpu), ('generality', 'Generality of the default: the planned recipe across datasets', generality),
            ('folds', 'Folds and ensembles: the cross-validation score against held-out data', folds)]

RUN = {'segmentation_cv': 'python bench/segmentation.py --parts cv --json bench/results/segmentation_cv.json',
       'volume_patches': 'python bench/volumes.py --parts patches --json bench/results/volume_patches.json'}   # sections whose command is not bench/<name>.py

def render() -> str:
    parts = ["<!-- generated by tools/benchmarks.py from bench/results/*.json: run the benchmark, then the tool; never edit by hand -->\n\n# Benchmarks\n\n"
             "Each section comes from one script in `bench/`, which prints its tables and writes them as JSON to `bench/results/`. Figures "
             "within a table were measured side by side in one run; compare ratios, not absolute times across sections or machines."]
    for name, title, fn in SECTIONS:
        f = RESULTS/f'{name}.json'
        if not f.exists(): parts.append(f"## {title}\n\nNo results yet: run `{RUN.get(name, f'python bench/{name}.py')}`."); continue
        doc = json.loads(f.read_text())
        parts.append(f"## {title}\n\n{where(doc)}\n\n{fn(doc['results'])}")
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    from generated import write_or_check
    write_or_check(ROOT/'BENCHMARKS.md', render(), 'tools/benchmarks.py')
