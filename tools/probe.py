"""A probe of hostile and careless inputs on the run-folder, predict and segmentation surfaces: each case runs the `medfast`
command in this process on broken copies of real data (../shared/data, or MEDFAST_DATA) and is judged by what a user would see:

- `error`: exit 1 or 2 with one `medfast:` line naming the problem;
- `ok`: exit 0 (or 3 for a partial scan) with a result, when the input is legitimate;
- `CRASH`: exit 4, a traceback, or an exception out of `main`;
- `WRONG`: a result where an error was due, or an error where a result was (the case says which it expects);
- `LOSS`: a file the user had was changed or removed, or a file appeared outside the outputs asked for.

    python tools/probe.py            # a table on stderr, the counts as JSON on the last line of stdout
"""
import contextlib, hashlib, io, json, os, pickle, shutil, sys, tempfile, traceback, warnings
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image

os.environ.setdefault('MEDFAST_OFFLINE', '1')
from medfast.core import data_path
from medfast.app.cli import main

T = Path(tempfile.mkdtemp(prefix='probe-'))
os.environ['MEDFAST_CACHE'] = str(T/'cache')
FAST = ['--epochs', '1', '--bs', '8', '--precision', 'fp32', '--size', '32']

def snapshot(root:Path) -> dict:
    "Every file under `root` (but the cache) with its hash"
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob('*'))
            if p.is_file() and not p.is_symlink() and 'cache' not in p.relative_to(root).parts}

def run(argv:list) -> tuple:
    "(exit status, stdout, stderr, exception text) of `medfast argv` in this process"
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter('ignore'); rc = main([str(a) for a in argv])
        return rc, out.getvalue(), err.getvalue(), None
    except BaseException as e: return None, out.getvalue(), err.getvalue(), ''.join(traceback.format_exception(e))[-600:]

CASES = []
def case(name:str, expect:str, may_write=()):
    "Register a probe: `expect` is 'error' or 'ok'; `may_write` names the paths (relative to the probe folder) it may create or change"
    def deco(f): CASES.append((name, expect, may_write, f)); return f
    return deco

def judge(name, expect, may_write, f) -> dict:
    try: argv = f()
    except Exception as e: return dict(case=name, verdict='SETUP', detail=repr(e)[:200])
    before = snapshot(T)
    rc, out, err, exc = run(argv)
    after = snapshot(T)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k) and not any(k.startswith(w) for w in may_write))
    lines = [l for l in err.splitlines() if l.startswith('medfast:') and 'warning:' not in l]
    last = lines[-1] if lines else err.strip().splitlines()[-1:] or ['']
    if exc or rc == 4 or 'Traceback' in err: v = 'CRASH'
    elif changed: v = 'LOSS'
    elif expect == 'error': v = 'error' if rc in (1, 2) else 'WRONG'
    else: v = 'ok' if rc in (0, 3) else 'WRONG'
    return dict(case=name, verdict=v, rc=rc, said=(exc or (last if isinstance(last, str) else last[0]))[:160], changed=changed[:3])

# ---------------------------------------------------------------- the subjects: small copies of real data, a run folder, a segmenter
def setup():
    chest = data_path('chest_xray_224/train')
    for c in ('NORMAL', 'PNEUMONIA'):
        (T/'chest'/c).mkdir(parents=True)
        for f in sorted((chest/c).glob('*.jpeg'))[:16]: shutil.copy(f, T/'chest'/c)
    masks = data_path('covid_lungs', 'masks')
    (T/'lung'/'images').mkdir(parents=True); (T/'lung'/'masks').mkdir()
    for m in sorted(masks.glob('*.png'))[:12]:
        shutil.copy(next(masks.parent.joinpath('images').glob(m.stem + '.*')), T/'lung'/'images'); shutil.copy(m, T/'lung'/'masks')
    hip = data_path('hippocampus', 'images')
    (T/'hip').mkdir()
    for f in sorted(hip.glob('*.nii.gz'))[:6]: shutil.copy(f, T/'hip')
    pd.DataFrame({'id': [f.name[:-7] for f in sorted((T/'hip').iterdir())], 'label': [0, 1]*3}).to_csv(T/'hip.csv', index=False)
    for argv in (['train', '--folder', T/'chest', '--preset', 'chest_xray', '--arch', 'resnet10t', *FAST, '--run', T/'run'],
                 ['train', '--images', T/'lung'/'images', '--masks', T/'lung'/'masks', '--arch', 'resnet10t', *FAST, '--out', T/'seg']):
        rc, _, err, exc = run(argv)
        if rc != 0: sys.exit(f"probe set-up failed: {' '.join(map(str, argv))}: {exc or err[-500:]}")

def copy_run(name, drop=()):
    "A copy of the run folder, without `drop`"
    shutil.copytree(T/'run', T/name)
    for d in drop: (T/name/d).unlink()
    return T/name

def derived(name, src, f, suffix=None):
    "A folder of the lung masks (or images) passed through `f`"
    (T/name).mkdir()
    for p in sorted(src.iterdir()):
        a = f(np.asarray(Image.open(p)))
        if a is not None: Image.fromarray(a).save(T/name/(p.stem + (suffix or p.suffix)))
    return T/name

IM, MK = T/'lung'/'images', T/'lung'/'masks'

# ---------------------------------------------------------------- run folders
@case('resume: a folder that does not exist', 'error')
def _(): return ['train', '--resume', T/'no_run']
@case('resume: a file, not a folder', 'error')
def _(): (T/'afile').write_text('x'); return ['train', '--resume', T/'afile']
@case('resume: command.json is a list', 'error')
def _(): r = copy_run('r_list', ['metrics.json']); (r/'command.json').write_text('[]'); return ['train', '--resume', r]
@case('resume: argv holds numbers', 'error')
def _(): r = copy_run('r_num', ['metrics.json']); (r/'command.json').write_text('{"argv": ["train", 3]}'); return ['train', '--resume', r]
@case('resume: a path index out of range', 'error')
def _():
    r = copy_run('r_idx', ['metrics.json']); c = json.loads((r/'command.json').read_text()); c['paths'] = [99]
    (r/'command.json').write_text(json.dumps(c)); return ['train', '--resume', r]
@case('resume: paths is a string', 'error')
def _():
    r = copy_run('r_pstr', ['metrics.json']); c = json.loads((r/'command.json').read_text()); c['paths'] = 'all'
    (r/'command.json').write_text(json.dumps(c)); return ['train', '--resume', r]
@case('resume: checkpoint cut in half', 'error')
def _():
    r = copy_run('r_half', ['metrics.json']); b = (r/'checkpoint.pt').read_bytes(); (r/'checkpoint.pt').write_bytes(b[:len(b)//2]); return ['train', '--resume', r]
@case('resume: checkpoint of zero bytes', 'error')
def _(): r = copy_run('r_zero', ['metrics.json']); (r/'checkpoint.pt').write_bytes(b''); return ['train', '--resume', r]
@case('resume: checkpoint of another version', 'error')
def _():
    import torch
    r = copy_run('r_ver', ['metrics.json']); s = torch.load(r/'checkpoint.pt', weights_only=True); s['version'] = 1; torch.save(s, r/'checkpoint.pt')
    return ['train', '--resume', r]
@case('resume: checkpoint from a run of other epochs', 'error', may_write=('r_epochs/',))
def _():
    import torch
    r = copy_run('r_epochs', ['metrics.json', 'model.pt', 'model.json', 'predictions.csv', 'report.html'])
    s = torch.load(r/'checkpoint.pt', weights_only=True); s['n_epoch'] = 7; torch.save(s, r/'checkpoint.pt'); return ['train', '--resume', r]
@case('resume: pickled code as the checkpoint', 'error')
def _():
    class Evil:
        def __reduce__(self): return (Path.write_text, (T/'pwned', 'ran'))
    r = copy_run('r_evil', ['metrics.json']); (r/'checkpoint.pt').write_bytes(pickle.dumps({'version': 2, 'e': Evil()})); return ['train', '--resume', r]
@case('resume: with another option', 'error')
def _(): return ['train', '--resume', T/'run', '--epochs', '5']
@case('resume: a finished run', 'error')
def _(): return ['train', '--resume', T/'run']
@case('train: --run an existing non-empty folder', 'error')
def _(): return ['train', '--folder', T/'chest', '--run', T/'run']
@case('train: --run an existing file', 'error')
def _(): (T/'runfile').write_text('x'); return ['train', '--folder', T/'chest', '--run', T/'runfile']
@case('train: --run inside the class-folder tree it reads', 'error')
def _(): return ['train', '--folder', T/'chest', '--preset', 'chest_xray', '--arch', 'resnet10t', *FAST, '--run', T/'chest'/'run2']
@case('report: a folder without metrics.json', 'error')
def _(): return ['report', T/'chest']
@case('report: metrics.json without valid', 'error')
def _():
    r = copy_run('rep_valid'); m = json.loads((r/'metrics.json').read_text()); del m['valid']; (r/'metrics.json').write_text(json.dumps(m)); return ['report', r]
@case('report: predictions.csv with a row added', 'error')
def _():
    r = copy_run('rep_extra'); t = (r/'predictions.csv').read_text().splitlines(keepends=True); (r/'predictions.csv').write_text(''.join(t + t[-1:])); return ['report', r]
@case('report: the data moved away (pictures say why)', 'ok', may_write=('rep_moved/report.html',))
def _():
    r = copy_run('rep_moved'); p = pd.read_csv(r/'predictions.csv'); p['item'] = '/gone/' + p['item'].map(lambda s: Path(s).name)
    p.to_csv(r/'predictions.csv', index=False); return ['report', r]
@case('report: model.pt missing', 'error')
def _(): return ['report', copy_run('rep_nomodel', ['model.pt'])]
@case('report: model.json edited', 'error')
def _():
    r = copy_run('rep_spec'); s = json.loads((r/'model.json').read_text()); s['params']['size'] = 64; (r/'model.json').write_text(json.dumps(s)); return ['report', r]

# ---------------------------------------------------------------- predict writers
SEG = lambda: T/'seg.pt'
@case('predict: the model spec is missing', 'error')
def _(): shutil.copy(T/'seg.pt', T/'lonely.pt'); return ['predict', T/'lonely.pt', '--images', IM, '--out', T/'p_lonely']
@case('predict: --out an existing non-empty folder', 'error')
def _(): return ['predict', SEG(), '--images', IM, '--out', T/'lung']
@case('predict: --out the model file itself', 'error')
def _(): return ['predict', SEG(), '--images', IM, '--out', T/'seg.pt']
@case('predict: --out the model spec (.json)', 'error')
def _(): return ['predict', SEG(), '--images', IM, '--out', T/'seg.json']
@case('predict: --out a symlink to an input image', 'error')
def _(): (T/'l.csv').symlink_to(sorted(IM.iterdir())[0]); return ['predict', SEG(), '--images', IM, '--out', T/'l.csv']
@case('predict: ids CSV with a header only', 'error')
def _(): (T/'ids0.csv').write_text('id\n'); return ['predict', SEG(), '--csv', T/'ids0.csv', '--images', IM, '--pattern', '{}.png', '--out', T/'p0']
@case('predict: ids CSV without the id column', 'error')
def _(): (T/'ids1.csv').write_text('name\na\n'); return ['predict', SEG(), '--csv', T/'ids1.csv', '--images', IM, '--pattern', '{}.png', '--out', T/'p1']
@case('predict: ids of images that do not exist', 'error')
def _(): (T/'ids2.csv').write_text('id\nnope\n'); return ['predict', SEG(), '--csv', T/'ids2.csv', '--images', IM, '--pattern', '{}.png', '--out', T/'p2']
@case('predict: the same id twice (one mask file)', 'error')
def _():
    s = sorted(IM.iterdir())[0]; (T/'ids3.csv').write_text(f"id\n{s.stem}\n{s.stem}\n")
    return ['predict', SEG(), '--csv', T/'ids3.csv', '--images', IM, '--pattern', '{}' + s.suffix, '--out', T/'p3']
@case('predict: an id with ../ (outside --out)', 'error')
def _():
    s = sorted(IM.iterdir())[0]; (T/'ids4.csv').write_text(f"id\n../lung/images/{s.stem}\n")
    return ['predict', SEG(), '--csv', T/'ids4.csv', '--images', IM, '--pattern', '{}' + s.suffix, '--out', T/'p4']
@case('predict: an absolute id', 'error')
def _():
    s = sorted(IM.iterdir())[0]; (T/'ids5.csv').write_text(f"id\n{IM/s.stem}\n")
    return ['predict', SEG(), '--csv', T/'ids5.csv', '--images', IM, '--pattern', '{}' + s.suffix, '--out', T/'p5']
@case('predict: an empty images folder', 'error')
def _(): (T/'empty').mkdir(); return ['predict', SEG(), '--images', T/'empty', '--out', T/'p6']
@case('predict: a text file among the images (skipped or named)', 'ok', may_write=('p7',))
def _():
    shutil.copytree(IM, T/'im_txt'); (T/'im_txt'/'notes.txt').write_text('x'); return ['predict', SEG(), '--images', T/'im_txt', '--out', T/'p7']
@case('predict: a corrupt PNG among the images', 'error')
def _():
    shutil.copytree(IM, T/'im_bad'); (T/'im_bad'/'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'0'*50); return ['predict', SEG(), '--images', T/'im_bad', '--out', T/'p8']
@case('predict: a sample whose ids differ', 'error')
def _():
    pd.DataFrame({'ImageId': ['x', 'y'], 'EncodedPixels': ['-1']*2}).to_csv(T/'sample.csv', index=False)
    return ['predict', SEG(), '--images', IM, '--out', T/'sub.csv', '--sample', T/'sample.csv']
@case('predict: a sample without its id column', 'error')
def _():
    pd.DataFrame({'X': [p.stem for p in IM.iterdir()]}).to_csv(T/'sample2.csv', index=False)
    return ['predict', SEG(), '--images', IM, '--out', T/'sub2.csv', '--sample', T/'sample2.csv']
@case('predict: --out in a folder that cannot be written', 'error')
def _(): return ['predict', SEG(), '--images', IM, '--out', '/proc/x/sub.csv']
@case('predict: --out in a folder not made yet (made)', 'ok', may_write=('new/deeper/',))
def _(): return ['predict', SEG(), '--images', IM, '--out', T/'new'/'deeper'/'sub.csv']
@case('predict: a segmenter given class folders', 'error')
def _(): return ['predict', SEG(), '--folder', T/'chest', '--out', T/'p9']
@case('predict: --pattern without {}', 'error')
def _(): s = sorted(IM.iterdir())[0]; (T/'ids6.csv').write_text(f"id\n{s.stem}\n"); return ['predict', SEG(), '--csv', T/'ids6.csv', '--images', IM, '--pattern', 'x.png', '--out', T/'p10']
@case('predict: an id with a newline', 'error')
def _():
    pd.DataFrame({'id': ['a\nb']}).to_csv(T/'ids7.csv', index=False); return ['predict', SEG(), '--csv', T/'ids7.csv', '--images', IM, '--pattern', '{}.png', '--out', T/'p11']
@case('predict: a classifier written as masks', 'error')
def _(): return ['predict', T/'run'/'model.pt', '--images', T/'chest'/'NORMAL', '--out', T/'p12']

# ---------------------------------------------------------------- segmentation
def train_seg(masks, images=None, extra=()): return ['train', '--images', images or IM, '--masks', masks, '--arch', 'resnet10t', *FAST, *extra, '--out', T/'s_out']
@case('seg train: a mask of another size than its image', 'error')
def _():
    m = derived('mk_size', MK, lambda a: a); f = sorted(m.iterdir())[0]; Image.fromarray(np.zeros((7, 9), np.uint8)).save(f); return train_seg(m)
@case('seg train: a value above the classes', 'error')
def _(): return train_seg(derived('mk_3', MK, lambda a: np.where(a == 1, 3, a).astype(np.uint8)))
@case('seg train: every mask empty', 'error')
def _(): return train_seg(derived('mk_0', MK, lambda a: np.zeros_like(a)))
@case('seg train: every mask all 255', 'error')
def _(): return train_seg(derived('mk_255', MK, lambda a: np.full_like(a, 255)))
@case('seg train: a 0/255 export', 'error')
def _(): return train_seg(derived('mk_0255', MK, lambda a: np.where(a == 1, 255, 0).astype(np.uint8)))
@case('seg train: 16-bit masks of 0/1', 'ok', may_write=('s_out',))
def _(): return train_seg(derived('mk_16', MK, lambda a: np.where(a == 255, 0, a).astype(np.uint16)))
@case('seg train: grey masks saved as RGB (equal channels)', 'ok', may_write=('s_out',))
def _(): return train_seg(derived('mk_rgb', MK, lambda a: np.repeat(np.where(a == 255, 0, a)[..., None], 3, 2).astype(np.uint8)))
@case('seg train: colour-coded RGB masks', 'error')
def _(): return train_seg(derived('mk_col', MK, lambda a: np.stack([np.where(a == 1, 255, 0), np.zeros_like(a), np.where(a == 1, 0, 255)], -1).astype(np.uint8)))
@case('seg train: an empty masks folder', 'error')
def _(): (T/'mk_empty').mkdir(); return train_seg(T/'mk_empty')
@case('seg train: masks named after no image', 'error')
def _():
    (T/'mk_names').mkdir()
    for i, p in enumerate(sorted(MK.iterdir())): shutil.copy(p, T/'mk_names'/f"other{i}.png")
    return train_seg(T/'mk_names')
@case('seg train: --masks a file', 'error')
def _(): return train_seg(sorted(MK.iterdir())[0])
@case('seg train: --images and --masks the same folder', 'error')
def _(): return train_seg(MK, images=MK)
@case('seg train: masks as JPEG (lossy values)', 'error')
def _(): return train_seg(derived('mk_jpg', MK, lambda a: np.where(a == 255, 0, a*200).astype(np.uint8), suffix='.jpg'))
@case('seg train: 1x1 images with 1x1 masks', 'ok', may_write=('s_out',))
def _():
    (T/'tiny_i').mkdir(); (T/'tiny_m').mkdir()
    for i in range(6): Image.fromarray(np.full((1, 1), 40*i, np.uint8)).save(T/'tiny_i'/f"t{i}.png"); Image.fromarray(np.full((1, 1), i % 2, np.uint8)).save(T/'tiny_m'/f"t{i}.png")
    return train_seg(T/'tiny_m', images=T/'tiny_i')
@case('seg train: 16-bit grey images', 'ok', may_write=('s_out',))
def _():
    (T/'im16').mkdir()
    for p in sorted(IM.iterdir()): Image.fromarray((np.asarray(Image.open(p).convert('L')).astype(np.uint16)*257)).save(T/'im16'/(p.stem + '.png'))
    return train_seg(MK, images=T/'im16')
@case('seg evaluate: masks of another size', 'error')
def _():
    m = derived('ev_size', MK, lambda a: a[:-3]); return ['evaluate', SEG(), '--images', IM, '--masks', m]
@case('seg evaluate: all masks 255 (nothing scored: null, counted)', 'ok')
def _(): return ['evaluate', SEG(), '--images', IM, '--masks', derived('ev_255', MK, lambda a: np.full_like(a, 255))]
@case('seg evaluate: a class the model lacks', 'error')
def _(): return ['evaluate', SEG(), '--images', IM, '--masks', derived('ev_2', MK, lambda a: np.where(a == 1, 2, a).astype(np.uint8))]
@case('seg evaluate: every mask empty (misses counted)', 'ok')
def _(): return ['evaluate', SEG(), '--images', IM, '--masks', derived('ev_0', MK, lambda a: np.zeros_like(a))]
@case('seg evaluate: a classifier given masks', 'error')
def _(): return ['evaluate', T/'run'/'model.pt', '--images', IM, '--masks', MK]

# ---------------------------------------------------------------- NIfTI and labels
def nifti_train(csv, folder=None, run='nii_run'): return ['train', '--csv', csv, '--images', folder or T/'hip', '--pattern', '{}.nii.gz', '--id-col', 'id', '--label-col', 'label', '--arch', 'resnet3d_10', '--epochs', '1', '--size', '8', '--patch', '8', '--run', T/run]
@case('nifti: a corrupt .nii.gz', 'error', may_write=('nii_bad',))
def _():
    shutil.copytree(T/'hip', T/'hip_bad'); f = sorted((T/'hip_bad').iterdir())[0]; f.write_bytes(f.read_bytes()[:200]); return nifti_train(T/'hip.csv', T/'hip_bad', 'nii_bad')
@case('nifti: a stray label among 0/1', 'error', may_write=('nii_maybe/command.json',))
def _():
    t = pd.read_csv(T/'hip.csv'); t['label'] = t['label'].astype(str); t.loc[2, 'label'] = 'maybe'; t.to_csv(T/'hip_maybe.csv', index=False); return nifti_train(T/'hip_maybe.csv', run='nii_maybe')
@case('nifti: the labels fixed, the same --run again (a failed start is restartable)', 'ok', may_write=('nii_maybe',))
def _(): return nifti_train(T/'hip.csv', run='nii_maybe')
@case('nifti: an id listed twice with other labels', 'error')
def _():
    t = pd.read_csv(T/'hip.csv'); pd.concat([t, t.iloc[:1].assign(label=1 - t.label.iloc[0])]).to_csv(T/'hip_dup.csv', index=False); return nifti_train(T/'hip_dup.csv', run='nii_dup')
@case('nifti: a volume of zeros (warned, trained)', 'ok', may_write=('nii_zero',))
def _():
    import nibabel as nib
    shutil.copytree(T/'hip', T/'hip_zero'); f = sorted((T/'hip_zero').iterdir())[0]; im = nib.load(f)
    nib.save(nib.Nifti1Image(np.zeros(im.shape, np.uint8), im.affine), f); return nifti_train(T/'hip.csv', T/'hip_zero', 'nii_zero')

if __name__ == '__main__':
    setup()
    rows = []
    for c in CASES:
        rows.append(judge(*c)); r = rows[-1]
        print(f"{r['verdict']:6} rc={r.get('rc')} {r['case']}: {r.get('said', r.get('detail', ''))}" + (f" CHANGED {r['changed']}" if r.get('changed') else ''), file=sys.stderr, flush=True)
    counts = pd.Series([r['verdict'] for r in rows]).value_counts().to_dict()
    print(json.dumps(dict(cases=len(rows), counts=counts, rows=rows)))
