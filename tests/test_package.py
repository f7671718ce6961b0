"""The wheel is how an offline Kaggle kernel gets medfast: build it, install it without an index into a new environment, import it."""
import os, subprocess, sys, venv, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
# pip with no configuration at all: no index, no find-links, no constraints (this machine's pip.conf adds local wheel folders)
OFFLINE = {**{k: v for k, v in os.environ.items() if not k.startswith('PIP_')}, 'PIP_CONFIG_FILE': os.devnull, 'PIP_NO_INDEX': '1'}

def run(*cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r

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
    # (the venv's own old setuptools would shadow the newer one torch declares; Kaggle images have one setuptools)
    run(py, '-m', 'pip', 'uninstall', '-y', '-q', 'setuptools', env=OFFLINE)
    run(py, '-m', 'pip', 'install', '--no-index', whl, env=OFFLINE)
    r = run(py, '-c', 'import medfast, medfast.dicom as d; from medfast.dicom import read_dicom; import pydicom.data;'
                      'print(medfast.__file__); print(read_dicom(pydicom.data.get_testdata_file("CT_small.dcm")).shape)', cwd=tmp_path)
    file_, shape = r.stdout.split('\n')[:2]
    assert str(env) in file_ and shape == '(128, 128)', r.stdout
