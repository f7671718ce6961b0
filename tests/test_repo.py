"""Budgets the front door keeps: notebook sizes, no progress-bar text in saved outputs, a README of at most 8,000 characters."""
import json
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT/'nbs').glob('*.ipynb'))
LIBRARY = [p for p in NBS if not p.name.startswith(('2', 'index'))]   # 2x_: tutorials

def test_notebook_sizes():
    total = sum(p.stat().st_size for p in NBS)
    assert total < 3_000_000, f"nbs/ holds {total:,} bytes of notebooks; the budget is 3 MB (keep outputs only where a picture teaches)"
    big = {p.name: p.stat().st_size for p in LIBRARY if p.stat().st_size > 250_000}
    assert not big, f"library notebooks over 250 KB: {big}"

@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_no_progress_bar_text(nb):
    for i, c in enumerate(json.loads(nb.read_text())['cells']):
        for o in c.get('outputs', []):
            text = ''.join(o.get('text', [])) + ''.join(''.join(v) for k, v in o.get('data', {}).items() if k in ('text/plain', 'text/html'))
            assert '<progress' not in text and '████' not in text, f"{nb.name}, cell {i}: a saved progress bar"
            assert o.get('name') != 'stderr', f"{nb.name}, cell {i}: a saved stderr stream (warnings, logs)"

def test_readme_budget():
    n = len((ROOT/'README.md').read_text())
    assert n <= 8000, f"README.md is {n:,} characters; the budget is 8,000 (details go to CONTRIBUTING.md, figures to BENCHMARKS.md)"
