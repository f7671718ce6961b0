"""How an offline Kaggle kernel gets medfast: `medfast kaggle-bundle`, installed with no index into an environment shaped like Kaggle's.

The environment holds the oldest versions medfast allows (its floors; Kaggle's image pins scikit-learn 1.2.2 and numpy 1.26) and
no pylibjpeg. torch and torchvision, which Kaggle's image carries, are linked in from this environment rather than installed again.
The bundle must install there without an index, decode what Pillow can without the `dicom` extra (and say how to get the rest), and
load a model exported here, under numpy 2, giving the same predictions.
"""
import json, os, subprocess, sys, venv, zipfile
from importlib import metadata
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# pip with no configuration at all: no index, no find-links (this machine's pip.conf adds local wheel folders)
OFFLINE = {**{k: v for k, v in os.environ.items() if not k.startswith('PIP_')}, 'PIP_CONFIG_FILE': os.devnull, 'PIP_NO_INDEX': '1'}
# Kaggle's image today (fastai 2.8, scikit-learn 1.2.2, numpy 1.26, matplotlib 3.7), at medfast's floors where those are older
FLOORS = {'numpy': '1.26.4', 'scikit-learn': '1.2.2', 'matplotlib': '3.7.5', 'pandas': '2.1.4', 'scipy': '1.11.4', 'pydicom': '3.0.1',
          'fastai': '2.8.12', 'timm': '1.0.3', 'fastprogress': '1.0.3', 'nibabel': '5.0.1'}
KAGGLE_CARRIES = ('torch', 'torchvision')   # linked from this environment, with what they need except numpy and pillow

def run(*cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r

def test_floors_match_pyproject():
    "The Kaggle-like environment installs each declared floor (its latest patch release), so the floors are what is tested"
    from packaging.version import Version
    reqs = {Requirement(r).name: Requirement(r) for r in metadata.requires('medfast') if 'extra' not in r}
    for name, v in FLOORS.items():
        low = Version(next(s.version for s in reqs[name].specifier if s.operator == '>='))
        assert Version(v).release[:len(low.release)] == low.release, f"{name}: pyproject's floor {low}, the Kaggle-like test installs {v}"
    assert not any(n.startswith('pylibjpeg') for n in reqs), "pylibjpeg belongs to the dicom extra"

def closure(names, skip=('numpy', 'pillow')):
    "The distributions `names` need, recursively, without extras"
    seen, todo = {}, list(names)
    while todo:
        n = todo.pop().lower().replace('_', '-')
        if n in seen or n in skip: continue
        try: d = metadata.distribution(n)
        except metadata.PackageNotFoundError: continue
        seen[n] = d
        for r in d.requires or []:
            r = Requirement(r)
            if r.marker is None or r.marker.evaluate({'extra': ''}): todo.append(r.name)
    return seen

def link_dists(dists, folder:Path) -> Path:
    "Symlink each distribution's top-level files and metadata into `folder`, a site directory outside the environment"
    folder.mkdir(parents=True, exist_ok=True)
    for d in dists.values():
        for t in {Path(str(f)).parts[0] for f in d.files or [] if not str(f).startswith('..')}:
            src, dst = Path(d.locate_file(t)), folder/t
            if src.exists() and not dst.exists(): dst.symlink_to(src)
    return folder

@pytest.fixture(scope='module')
def kaggle_env(tmp_path_factory):
    "A venv with Kaggle's packages at medfast's floors, torch linked in, no pylibjpeg"
    root = tmp_path_factory.mktemp('kaggle')
    env = root/'env'
    venv.create(env, with_pip=True)
    py = env/'bin'/'python'
    site = Path(run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip())
    run(py, '-m', 'pip', 'uninstall', '-y', '-q', 'setuptools')   # the venv's old one; torch's comes with the link
    # torch's files stay where they are: a .pth adds a folder of links from outside the environment, which pip never uninstalls from
    (site/'kaggle_image.pth').write_text(str(link_dists(closure(KAGGLE_CARRIES), root/'image_site')) + '\n')
    run(py, '-m', 'pip', 'install', '-q', *[f"{k}=={v}" for k, v in FLOORS.items()], 'pillow')   # from the package index, as Kaggle's image was built
    vers = json.loads(run(py, '-c', 'import json, numpy, sklearn, torch; print(json.dumps([numpy.__version__, sklearn.__version__, torch.__version__]))').stdout)
    assert vers[:2] == [FLOORS['numpy'], FLOORS['scikit-learn']], vers
    assert run(py, '-c', 'import importlib.util as u; print(u.find_spec("pylibjpeg"))').stdout.strip() == 'None'
    return py

@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp('bundle')/'medfast-offline'
    r = run(Path(sys.executable).parent/'medfast', 'kaggle-bundle', out, cwd=ROOT)
    info = json.loads(r.stdout.strip().splitlines()[-1])
    names = zipfile.ZipFile(next(out.glob('medfast-*.whl'))).namelist()
    assert 'medfast/io/dicom.py' in names and 'medfast/tasks/classify.py' in names and not any(n.startswith(('nbs/', 'tests/', 'bench/')) for n in names)
    assert any(w.startswith('pylibjpeg_libjpeg') for w in info['wheels']) and (out/'README.md').is_file()
    return out

@pytest.mark.xdist_group('wheel')                  # builds the wheel in the source tree, as 09_app.kaggle does: never both at once
def test_kaggle_bundle_installs_offline(kaggle_env, bundle, tmp_path):
    py, cwd = kaggle_env, tmp_path
    # 1. medfast alone, no index: dependencies from the environment
    run(py, '-m', 'pip', 'install', '--no-index', '--find-links', bundle, 'medfast', env=OFFLINE)
    check = ("import pydicom.data as d, medfast; from medfast.io.dicom import read_dicom; from medfast.core import DicomReadError\n"
             "print(read_dicom(d.get_testdata_file('SC_rgb_jpeg_dcmtk.dcm')).shape)\n"
             "try: read_dicom(d.get_testdata_file('MR_small_jpeg_ls_lossless.dcm')); print('decoded')\n"
             "except DicomReadError as e: print('error', e)\n")
    out = run(py, '-c', check, cwd=cwd).stdout.splitlines()
    assert out[0] == '(100, 100, 3)', out                                      # 8-bit JPEG: Pillow, no extra needed
    assert out[1].startswith('error') and 'pip install "medfast[dicom]"' in out[1], out   # the rest: a clear error and the install line
    # 2. the dicom extra from the bundle
    run(py, '-m', 'pip', 'install', '--no-index', '--find-links', bundle, 'medfast[dicom]', env=OFFLINE)
    assert run(py, '-c', check, cwd=cwd).stdout.splitlines()[1] == 'decoded'
    # 3. a model exported here (numpy 2) loads there (numpy 1.26) and predicts the same
    from PIL import Image
    from medfast.data.tables import items_from_folder, split_by_patient
    from medfast.engine.learner import train, predict
    from medfast.engine.model_format import export
    rng = np.random.default_rng(0)
    for c in ('NORMAL', 'PNEUMONIA'):
        (tmp_path/'xr'/c).mkdir(parents=True)
        for i in range(12):
            a = rng.integers(0, 90, (32, 32)).astype(np.uint8)
            if c == 'PNEUMONIA': a[4:14, 4:14] = 230
            Image.fromarray(a).save(tmp_path/'xr'/c/f"IM-{i:04d}-0001.png")
    t = split_by_patient(items_from_folder(tmp_path/'xr'), valid_pct=0.25, seed=0)
    learn = train(t, 'xray', arch='resnet10t', size=32, bs=8, epochs=1, precision='fp32', aug=False)
    export(learn, tmp_path/'m.pt')
    t.to_csv(tmp_path/'t.csv', index=False); np.save(tmp_path/'p.npy', predict(learn, t))
    code = ("import json, numpy as np, pandas as pd, sklearn; from medfast.engine.model_format import load_model; from medfast.engine.learner import predict, evaluate\n"
            f"t = pd.read_csv({str(tmp_path/'t.csv')!r}); l = load_model({str(tmp_path/'m.pt')!r})\n"
            f"d = float(np.abs(predict(l, t) - np.load({str(tmp_path/'p.npy')!r})).max())\n"
            "print(json.dumps(dict(diff=d, accuracy=evaluate(l, t)['accuracy'], numpy=np.__version__, sklearn=sklearn.__version__)))")
    res = json.loads(run(py, '-c', code, cwd=cwd).stdout.strip().splitlines()[-1])
    assert res['diff'] < 1e-5 and 0 <= res['accuracy'] <= 1, res
    assert (res['numpy'], res['sklearn']) == (FLOORS['numpy'], FLOORS['scikit-learn']), res
