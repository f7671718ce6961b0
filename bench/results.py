"""Where every benchmark writes its figures: `bench/results/<name>.json`, read by `tools/benchmarks.py` to write BENCHMARKS.md.

Each file holds the command line, the machine and the package versions next to the figures, so a table in BENCHMARKS.md always
says where it was measured. Writes are atomic: a run that dies leaves the previous results in place.
"""
import json, os, sys, time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent/'results'

def machine():
    "Where the figures were measured: medfast's `machine_info` plus numpy's version"
    import numpy
    from medfast.core import machine_info
    return dict(machine_info(), numpy=numpy.__version__, load_avg_15min=round(os.getloadavg()[2], 2))   # above the torch threads: something else ran too

def save(name, data, args=None, path=None):
    "Write `data` (the figures) with the command, machine and date to `bench/results/{name}.json` (or `path`), atomically"
    out = Path(path) if path else RESULTS/f'{name}.json'
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = dict(bench=name, command='python ' + ' '.join(['bench/' + Path(sys.argv[0]).name] + sys.argv[1:]),
               args=vars(args) if args is not None else {}, date=time.strftime('%Y-%m-%d'), machine=machine(), results=data)
    tmp = out.with_suffix('.json.partial')
    tmp.write_text(json.dumps(doc, indent=1, default=str)); os.replace(tmp, out)
    print(f"results written to {out}", file=sys.stderr)
    return out
