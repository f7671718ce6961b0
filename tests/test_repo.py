"""Budgets the front door keeps: notebook sizes, no progress-bar text in saved outputs, a README of at most 8,000 characters; the layout's rules; no source file hidden from git."""
import ast, json
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

# The layout by concern (ARCHITECTURE.md): each package builds on the ones before it, never on a later one, and on no private name
LAYERS = ['core', 'io', 'transforms', 'metrics', 'models', 'data', 'inference', 'engine', 'tasks', 'app', 'all']
MODULES = sorted(p for p in (ROOT/'medfast').rglob('*.py') if p.name not in ('__init__.py', '_modidx.py'))

def _layer(mod:str) -> int: return LAYERS.index(mod.split('.')[1])

def _imports(path):
    "(line, module, names) of every `import medfast...` and `from medfast... import ...` in a module, function-level imports included"
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith('medfast.'): yield n.lineno, n.module, [a.name for a in n.names]
        if isinstance(n, ast.Import): yield from ((n.lineno, a.name, []) for a in n.names if a.name.startswith('medfast.'))

def _name(p): return 'medfast.' + '.'.join(p.relative_to(ROOT/'medfast').with_suffix('').parts)

@pytest.mark.parametrize('path', MODULES, ids=[_name(p) for p in MODULES])
def test_layers(path):
    me = _name(path)
    later = [(l, m) for l, m, _ in _imports(path) if _layer(m) > _layer(me)]
    assert not later, f"{me} imports from later packages ({' '.join(LAYERS)}): " + ', '.join(f"line {l}: {m}" for l, m in later)

@pytest.mark.parametrize('path', MODULES, ids=[_name(p) for p in MODULES])
def test_no_private_names_across_modules(path):
    me = _name(path)
    bad = [(l, m, n) for l, m, ns in _imports(path) for n in ns if m != me and n.startswith('_')]
    assert not bad, f"{me} imports private names of other modules: " + ', '.join(f"line {l}: {n} from {m}" for l, m, n in bad)
    mods = {a.asname or a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Import) for a in n.names if a.name.startswith('medfast')}
    attrs = [(n.lineno, ast.unparse(n)) for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute) and n.attr.startswith('_')
             and not n.attr.startswith('__') and ast.unparse(n.value).split('.')[0] in mods]
    assert not attrs, f"{me} reads private attributes of medfast modules: {attrs}"

def test_engine_and_app_name_no_task():
    "The engine and the app work for any registered task: no built-in task or recipe is named there (the registry of built-in modules aside)"
    from medfast.engine.task import BUILTIN
    from medfast.engine.params import RECIPES, get_recipe
    get_recipe('xray')                                                  # loads every built-in task's recipes
    names = set(BUILTIN) | set(RECIPES)
    for path in MODULES:
        me = _name(path)
        if _layer(me) not in (LAYERS.index('engine'), LAYERS.index('app')) or me == 'medfast.engine.task': continue
        hits = [(n.lineno, n.value) for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant) and n.value in names]
        assert not hits, f"{me} names tasks or recipes: {hits}"

def test_no_source_is_ignored_by_git():
    "A module nbdev exports, or a notebook, that .gitignore hides is missing from every clone and from a wheel built from one"
    import shutil, subprocess
    if not (ROOT/'.git').exists() or not shutil.which('git'): pytest.skip('not a git checkout')
    files = [str(p.relative_to(ROOT)) for p in [*(ROOT/'medfast').rglob('*.py'), *NBS, *(ROOT/'tests').rglob('*.py')]]
    ignored = subprocess.run(['git', 'check-ignore', *files], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not ignored, f"git ignores source files (fix .gitignore): {', '.join(ignored)}"
