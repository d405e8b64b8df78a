"""Tuning is kept apart from testing: every recipe study reads development data, never the runner's evaluation folds."""
import json, re
import pytest
from conftest import NBS

# the chapters that choose settings by measurement, and the door each study's data comes through
STUDIES = {'04_baseline.ipynb': 'study_data', '05_supcon.ipynb': 'study_data', '11_ordinal.ipynb': 'study_data',
           '12_real_photographs.ipynb': 'photo_run'}
# what would read the runner's own data in a study cell
EVAL_DOORS = re.compile(r'load_synthetic\(|make_config\(|load_data\(|patient_folds\(')

def _slow_cells(nb):
    for c in json.loads((NBS/nb).read_text(encoding='utf-8'))['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'code' and re.search(r'^#\|\s*slow\s*$', src, re.M): yield src

def test_the_development_seed_is_not_the_evaluation_seed():
    from supcon_dr.studies import DEV_SEED, EVAL_SEED, study_data
    from supcon_dr.baseline import TrainConfig
    from supcon_dr.experiment import make_config
    assert EVAL_SEED == TrainConfig().seed == make_config(quick=True)['seed'] and DEV_SEED != EVAL_SEED
    with pytest.raises(ValueError, match="is the runner's evaluation data"): study_data(64, seed=EVAL_SEED)

@pytest.mark.parametrize('nb', STUDIES)
def test_each_study_reads_development_data(nb):
    "A study chapter's slow cells train on what `study_data` (or chapter 12's photographs) gives, nothing else."
    cells = list(_slow_cells(nb))
    trains = [c for c in cells if re.search(r'\bgrid\(|\bstudy\(', c)]
    assert trains, f'{nb}: no study grid found'
    door = STUDIES[nb]
    assert any(door in c for c in cells), f'{nb}: the study does not use {door}'
    for c in trains:
        bad = EVAL_DOORS.findall(c)
        assert not bad, f'{nb}: a study cell reads data another way ({bad}):\n{c[:300]}'

def test_photo_study_folds_are_the_development_seed():
    from supcon_dr.photos import photo_data
    from supcon_dr.studies import DEV_SEED
    import inspect
    assert inspect.signature(photo_data).parameters['seed'].default == DEV_SEED
