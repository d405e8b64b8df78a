"""Adding a method or a data source is one registry entry: a toy method and a toy data source, declared here and
nowhere else, go through chapter 07's `cross_validate` and chapter 09's runner and report."""
import json, warnings
import numpy as np, pandas as pd
import pytest

def _majority(train_df, valid_df, cfg=None, out_dir=None, prefix=''):
    "A toy control: every validation image gets the training set's most frequent grade."
    from supcon_dr.baseline import FoldResult
    p = np.zeros((len(valid_df), 5)); p[:, np.bincount(train_df.grade, minlength=5).argmax()] = 1
    return FoldResult(valid_df.grade.to_numpy(int), p, None, pd.DataFrame(), valid_df.reset_index(drop=True))

@pytest.fixture
def toy(tmp_path, monkeypatch):
    "Register the toy method and a toy data source (a copy of 60 synthetic images) for one test, then remove them."
    monkeypatch.setenv('SUPCON_DR_HOME', str(tmp_path/'home'))
    from supcon_dr.baseline import Method, register_method, METHODS
    from supcon_dr.data import load_synthetic
    from supcon_dr.data import DataSource, register_source, DATA_SOURCES
    from supcon_dr import experiment as E
    register_method(Method('majority', 'Majority grade (toy control)', 'control', fit=_majority, cost=0.0))
    register_source(DataSource('toyset', lambda root, options: load_synthetic(n_per_grade=12, size=64), False, 'a toy set'))
    yield E
    METHODS.pop('majority'); DATA_SOURCES.pop('toyset')

def test_toy_method_through_cross_validate(toy):
    from supcon_dr.evaluate import cross_validate
    from supcon_dr.data import load_synthetic, patient_folds
    from supcon_dr.baseline import METHOD_NAMES
    man = patient_folds(load_synthetic(n_per_grade=12, size=64), n_splits=3)
    cv = cross_validate(man, dict(seed=0), methods=('prior', 'majority'), verbose=False)
    assert cv.per_fold.method.tolist() == ['prior', 'majority'] * 3
    assert (cv.per_fold.loc[cv.per_fold.method == 'majority', 'qwk'] == 0).all()      # one grade for everyone: kappa 0
    assert METHOD_NAMES['majority'] == 'Majority grade (toy control)'

def test_toy_method_and_source_through_the_runner(toy, tmp_path):
    E = toy
    cfg = E.make_config(data='toyset', preset='quick', methods='ce,supcon,majority', folds=3, size=32, epochs=1,
                        supcon_epochs=1, bs=16)
    assert cfg['methods'] == ['ce', 'supcon', 'majority', 'ce_probe']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = E.run_experiment(cfg, tmp_path/'run', progress=False, figures=False, jobs=1)
    assert 'majority' in res['summary'] and {'supcon_vs_majority', 'ce_vs_majority', 'ce_probe_vs_majority'} <= set(res['comparisons'])
    md = (tmp_path/'run'/'results.md').read_text()
    assert '| Majority grade (toy control) |' in md and 'supcon − majority' in md
    assert any(v.startswith('Control:') and 'Majority grade (toy control)' in v for v in res['verdicts'])
    assert 'majority' in E.arg_parser().format_help() and 'toyset' in E.arg_parser().format_help()

def test_register_refuses_a_duplicate(toy):
    from supcon_dr.baseline import Method, register_method
    with pytest.raises(ValueError, match="a method 'majority' is already registered"):
        register_method(Method('majority', 'again', 'control', fit=_majority))
    from supcon_dr.data import DataSource, register_source
    with pytest.raises(ValueError, match="a data source 'toyset' is already registered"):
        register_source(DataSource('toyset', print, False))
