"""The wheel is how an offline Kaggle kernel gets medfast: build it, install it without an index into a new environment, import it."""
import subprocess, sys, venv, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def run(*cmd, **kw): return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)

def test_wheel_installs_offline(tmp_path):
    run(sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--outdir', tmp_path/'dist', ROOT, cwd=ROOT)
    whl, = (tmp_path/'dist').glob('medfast-*.whl')
    names = zipfile.ZipFile(whl).namelist()
    assert 'medfast/dicom.py' in names and not any(n.startswith(('nbs/', 'tests/', 'bench/')) for n in names)
    # a new environment whose site-packages already hold the dependencies, like a Kaggle image
    env = tmp_path/'env'
    venv.create(env, with_pip=True, system_site_packages=False)
    py = env/'bin'/'python'
    site = run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip()
    deps = [p for p in sys.path if p.endswith('site-packages')]
    (Path(site)/'kaggle_deps.pth').write_text('\n'.join(deps) + '\n')
    # no index: pip's resolver must be satisfied by what the environment already has
    run(py, '-m', 'pip', 'install', '--no-index', whl)
    r = run(py, '-c', 'import medfast, medfast.dicom as d; from medfast.dicom import read_dicom; import pydicom.data;'
                      'print(medfast.__file__); print(read_dicom(pydicom.data.get_testdata_file("CT_small.dcm")).shape)', cwd=tmp_path)
    file_, shape = r.stdout.split('\n')[:2]
    assert str(env) in file_ and shape == '(128, 128)', r.stdout
