"""The loaders on real photographs: the development set in `../shared/data/eyepacs-dev` (EyePACS layout, 820 photographs
of 410 patients; never copied into this repository). Skipped, with the reason shown, where that folder is absent."""
import shutil, warnings
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from PIL import Image
from conftest import ROOT

DEV = ROOT.parent/'shared'/'data'/'eyepacs-dev'
pytestmark = pytest.mark.skipif(not (DEV/'trainLabels.csv').exists(), reason=f'the development photographs are not at {DEV}')

@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch): monkeypatch.setenv('SUPCON_DR_HOME', str(tmp_path/'home'))

def test_eyepacs_loader_reads_the_development_photographs():
    from supcon_dr.data import load_eyepacs
    m = load_eyepacs(DEV)
    assert (len(m), m.patient_id.nunique()) == (820, 410)
    assert m.grade.value_counts().sort_index().tolist() == [295, 117, 226, 104, 78]      # the README's table
    assert set(m.eye) == {'left', 'right'} and m.groupby('patient_id').eye.nunique().eq(2).all()
    assert all(Path(p).is_file() for p in m.path)

def test_preprocessing_a_few_photographs_is_cached(tmp_path):
    from supcon_dr.data import load_eyepacs, preprocess_manifest
    m = load_eyepacs(DEV).iloc[:6]
    out = preprocess_manifest(m, 96, cache_dir=tmp_path/'cache', progress=False)
    assert out.attrs['n_decoded'] == 6 and out.source_path.tolist() == m.path.tolist()
    for p in out.path:
        with Image.open(p) as im: assert im.size == (96, 96) and im.mode == 'RGB'
    again = preprocess_manifest(m, 96, cache_dir=tmp_path/'cache', progress=False)
    assert again.attrs['n_cached'] == 6 and again.path.tolist() == out.path.tolist()

def _small_eyepacs(tmp_path, n_per_grade=2):
    "A copy of a few development photographs in EyePACS layout: `n_per_grade` images of each grade, other patients."
    from supcon_dr.data import load_eyepacs
    m = load_eyepacs(DEV)
    pick = m.groupby('grade', group_keys=False).apply(lambda g: g.drop_duplicates('patient_id').head(n_per_grade))
    root = tmp_path/'eyepacs'; (root/'train').mkdir(parents=True)
    for p in pick.path: shutil.copy(p, root/'train'/Path(p).name)
    pd.DataFrame(dict(image=[Path(p).stem for p in pick.path], level=pick.grade)).to_csv(root/'trainLabels.csv', index=False)
    return root

def test_an_unreadable_photograph_is_named_and_left_out(tmp_path):
    from supcon_dr.experiment import make_config, load_data
    root = _small_eyepacs(tmp_path, 3)
    bad = sorted((root/'train').iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:300])                                   # a truncated JPEG
    said = []
    man = load_data(make_config(data='eyepacs', root=str(root), folds=2, size=32), progress=False, log=said.append)
    assert len(man) == 14 and str(bad) not in man.source_path.tolist()
    assert len(said) == 1 and bad.name in said[0] and 'could not be read' in said[0], said
    cache = tmp_path/'home'/'preprocessed'
    assert not list(cache.rglob('*.tmp')) and not list(cache.rglob('.*'))     # nothing half-written left in the cache

def test_a_grade_outside_the_scale_is_one_line(tmp_path):
    from supcon_dr.experiment import make_config, load_data, UsageError
    root = _small_eyepacs(tmp_path)
    lab = pd.read_csv(root/'trainLabels.csv'); lab.loc[3, 'level'] = 7; lab.to_csv(root/'trainLabels.csv', index=False)
    with pytest.raises(UsageError) as e: load_data(make_config(data='eyepacs', root=str(root), folds=2, size=32), progress=False)
    msg = str(e.value)
    assert 'trainLabels.csv' in msg and 'grade must be an integer 0-4' in msg and "got 7" in msg and '\n' not in msg

def test_a_patient_pattern_that_matches_nothing_is_one_line(tmp_path):
    from supcon_dr.experiment import make_config, load_data, UsageError
    root = tmp_path/'folder'
    for p in sorted((DEV/'train').iterdir())[:4]: (root/'0').mkdir(parents=True, exist_ok=True); shutil.copy(p, root/'0'/p.name)
    with pytest.raises(UsageError) as e:
        load_data(make_config(data='folder', root=str(root), patient_re=r'^patient(\d+)', folds=2, size=32), progress=False)
    assert "patient_re '^patient(\\\\d+)' does not match file" in str(e.value) and '\n' not in str(e.value)
