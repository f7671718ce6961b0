"""Write README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which this project cannot install).

Markdown cells are copied as they are; code cells become ```python blocks. `python tools/readme.py --check` exits 1
when README.md is out of date instead of writing it.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    cells = json.loads(Path(nb_path).read_text())['cells']
    parts = ['<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file -->']
    for c in cells:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#|'): continue
        parts.append(src if c['cell_type'] == 'markdown' else f"```python\n{src}\n```")
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    from generated import write_or_check
    write_or_check(ROOT/'README.md', render(), 'tools/readme.py')
