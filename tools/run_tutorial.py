"""Run a tutorial at full size (MEDFAST_SLOW=1, slow cells included) and save its outputs into the notebook.

The saved outputs are what the tutorial's text describes. Progress-bar text and stderr streams are dropped (they are noise in a
document; `tests/test_repo.py` rejects them), then `nbdev-clean` strips metadata. Run: `python tools/run_tutorial.py nbs/20_tutorial_chest_xray.ipynb`.
The notebook is written only when every cell ran. `python tools/run_tutorial.py --shrink nbs/2*.ipynb` only re-encodes the saved pictures.
"""
import json, os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAR = re.compile(r'\|[█\- ]*\| *\d+(\.\d+)?% \[')

WIDTH, QUALITY = 640, 60   # saved pictures: at most 640 px wide, JPEG quality 60 (six tutorials fit the 3 MB budget of nbs/)

def small_png(b64:str, max_width:int=WIDTH) -> str:
    "A saved PNG at most `max_width` wide (the runner draws at retina resolution), palette-encoded"
    import base64, io
    from PIL import Image
    im = Image.open(io.BytesIO(base64.b64decode(b64))).convert('RGB')
    if im.width > max_width: im = im.resize((max_width, round(im.height*max_width/im.width)), Image.LANCZOS)
    buf = io.BytesIO(); im.quantize(128).save(buf, 'PNG', optimize=True)
    return base64.b64encode(buf.getvalue()).decode() + '\n'

def small_jpeg(b64:str, max_width:int=WIDTH, quality:int=QUALITY) -> str:
    "A saved JPEG (or a PNG, re-encoded) at most `max_width` wide, at `quality` (radiographs: the notebook stays small, the picture still teaches)"
    import base64, io
    from PIL import Image
    raw = base64.b64decode(b64)
    im = Image.open(io.BytesIO(raw)).convert('RGB')
    if im.width > max_width: im = im.resize((max_width, round(im.height*max_width/im.width)), Image.LANCZOS)
    buf = io.BytesIO(); im.save(buf, 'JPEG', quality=quality, optimize=True)
    return base64.b64encode(min(buf.getvalue(), raw, key=len) if raw[:3] == b'\xff\xd8\xff' else buf.getvalue()).decode() + '\n'

def strip_outputs(nb:Path):
    "Drop stderr streams and progress-bar lines from a notebook's saved outputs; shrink its pictures"
    d = json.loads(nb.read_text())
    for c in d['cells']:
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                if o.get('name') == 'stderr': continue
                lines = [l for l in ''.join(o['text']).splitlines(keepends=True) if not BAR.search(l) and '\r' not in l]
                if not lines: continue
                o['text'] = lines
            data = o.get('data', {})
            if any('<progress' in ''.join(v) for v in data.values() if isinstance(v, (list, str))): continue
            if 'image/png' in data:
                png = small_png(''.join(data['image/png'])); jpg = small_jpeg(png)
                o.get('metadata', {}).pop('image/png', None)
                if len(jpg) < .6*len(png) and len(png) > 40_000: del data['image/png']; data['image/jpeg'] = jpg   # photographic: JPEG is far smaller
                else: data['image/png'] = png
            if 'image/jpeg' in data: data['image/jpeg'] = small_jpeg(''.join(data['image/jpeg']))
            outs.append(o)
        if c['cell_type'] == 'code': c['outputs'] = outs
    nb.write_text(json.dumps(d, indent=1, ensure_ascii=False) + '\n')

def main(path):
    from nbdev.test import test_nb
    nb = Path(path).resolve()
    os.environ['MEDFAST_SLOW'] = '1'
    import fastprogress.fastprogress as fp
    fp.NO_BAR = True
    t = time.perf_counter()
    ok, _ = test_nb(nb, force_flags=['slow'], save=True, cell_timeout=None, basepath=ROOT)
    if not ok: sys.exit(f"{nb.name}: a cell failed (traceback above); the notebook was not written")
    strip_outputs(nb)
    subprocess.run([Path(sys.executable).parent/'nbdev-clean', '--fname', str(nb)], check=True, cwd=ROOT/'nbs')
    print(f"{nb.name}: full run saved in {(time.perf_counter() - t)/60:.1f} min", file=sys.stderr)

if __name__ == '__main__':
    if sys.argv[1] == '--shrink': [strip_outputs(Path(f)) for f in sys.argv[2:]]     # only re-encode the saved pictures of notebooks already run
    else: main(sys.argv[1])
