"""Run every notebook in nbs/ through nbdev's own test runner, one pytest test per notebook.

Cells tagged with a flag in `tst_flags` (pyproject.toml, e.g. `slow`) are skipped, as `nbdev-test` does; set
MEDFAST_TEST_FLAGS="slow" to run them too.
"""
import os
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook   # aliased: pytest would collect a name starting with test_

ROOT = Path(__file__).resolve().parents[1]
CFG = get_config(ROOT)
NBS = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))

@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    skip = CFG.tst_flags.split() if isinstance(CFG.tst_flags, str) else list(CFG.tst_flags)
    force = os.environ.get('MEDFAST_TEST_FLAGS', '').split()
    ok, secs = run_notebook(nb, skip_flags=skip, force_flags=force, basepath=ROOT, cell_timeout=CFG.cell_timeout)
    assert ok, f"{nb.name} failed (the failing cell's traceback is printed above)"
