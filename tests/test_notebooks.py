"""Run every notebook in nbs/ as a test, one pytest test per notebook, cell by cell in one kernel (execnb, as nbdev-test does).

What the summary says:
- **passed**: every cell ran.
- **skipped**, with the reason: the notebook needs real data that is absent. A tutorial checks its data in its first cells with
  `data_path` (a `DataMissingError` skips the rest); a library notebook runs everything, and when any of its real-data examples
  found no data (`find_data` records each absence) the test is a skip naming the data, not a pass.
- **failed**: the message names the notebook, the cell (number and first line) and the error; later cells still run, so every
  failing cell is listed, the first with its traceback.

`make test` runs the notebooks in parallel, one pytest-xdist worker per core (at most 4: `make test JOBS=1` runs them one by one),
each worker with its share of the cores for torch (`tests/conftest.py`).

One switch runs the slow cells (tagged `#| slow`) and the tutorials' full-size runs: `MEDFAST_SLOW=1` (`make test SLOW=1`).
Nothing downloads weights during the tests: `MEDFAST_OFFLINE=1` is set here (local checkpoint files only).
"""
import os, traceback
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.process import NBProcessor
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory

ROOT = Path(__file__).resolve().parents[1]
CFG = get_config(ROOT)
NBS = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
SLOW = os.environ.get('MEDFAST_SLOW', '') not in ('', '0')
os.environ['MEDFAST_OFFLINE'] = '1'
SKIP_FLAGS = set(CFG.tst_flags.split() if isinstance(CFG.tst_flags, str) else CFG.tst_flags)

def runs(cell) -> bool:
    "Whether the runner executes `cell`: code, not `#| eval: false`, and not tagged with a skipped flag unless SLOW"
    if cell.cell_type != 'code': return False
    d = getattr(cell, 'directives_', None) or {}
    v = d.get('eval', d.get('eval:', ''))                     # nbdev 3 gives {'eval': 'false'}
    if str(v[0] if isinstance(v, list) and v else v).strip().lower() == 'false': return False
    return SLOW or not (SKIP_FLAGS & d.keys())

def first_line(cell):
    lines = [l for l in cell.source.splitlines() if l.strip() and not l.startswith('#|')]
    return lines[0][:80] if lines else ''

def run_notebook(path:Path):
    "Run the notebook's cells in one kernel; returns (failures as (cell number, first line, exception), the shell)"
    import medfast.core
    medfast.core.data_absences.clear()
    nb = NBProcessor(path, rm_directives=False, process=True).nb
    sh, fails = CaptureShell(path, timeout=CFG.cell_timeout), []
    with working_directory(path.parent):
        for i, cell in enumerate(nb.cells):
            if not runs(cell): continue
            sh.cell(cell)
            if sh.exc is None: continue
            if isinstance(sh.exc, medfast.core.DataMissingError) and not fails:
                pytest.skip(f"{path.stem}: {sh.exc}")
            fails.append((i, first_line(cell), sh.exc, ''.join(traceback.format_exception(sh.exc))))
    return fails

WHEEL = ('09_app.kaggle',) # notebooks that build medfast's wheel in the source tree: one worker runs them and tests/test_package.py (`make test` runs in parallel)

@pytest.mark.parametrize('nb', [pytest.param(p, marks=pytest.mark.xdist_group('wheel')) if p.stem in WHEEL else p for p in NBS], ids=[p.stem for p in NBS])
def test_notebook(nb):
    import medfast.core
    fails = run_notebook(nb)
    if fails:
        i, line, exc, tb = fails[0]
        more = ''.join(f"\n  also cell {j} `{l}`: {type(e).__name__}: {str(e)[:200]}" for j, l, e, _ in fails[1:])
        pytest.fail(f"{nb.name}: cell {i} `{line}` raised {type(exc).__name__}: {str(exc)[:500]}{more}\n\n{tb}", pytrace=False)
    if medfast.core.data_absences:
        pytest.skip(f"{nb.stem}: ran without its real-data cells: " + '; '.join(dict.fromkeys(medfast.core.data_absences)))
