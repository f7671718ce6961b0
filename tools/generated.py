"The one way the tools write a generated document: `write_or_check(path, text, tool)` writes it, or with `--check` only says whether it is current"
import sys
from pathlib import Path

def write_or_check(out:Path, txt:str, tool:str):
    "Write `txt` to `out`; with `--check` on the command line, exit 0 when `out` already holds it and 1 when it does not"
    if '--check' in sys.argv:
        ok = out.exists() and out.read_text() == txt
        print(f"{out.name} is up to date" if ok else f"{out.name} is out of date: run python {tool}")
        sys.exit(0 if ok else 1)
    out.write_text(txt)
