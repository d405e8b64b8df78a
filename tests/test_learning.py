"""Smoke tests that fail when learning breaks: a tiny SupCon run whose loss falls and whose probe beats the untrained
encoder, and a tiny cross-entropy run above chance whose encoder, probed, beats the untrained one too.

Tiny on purpose (48 px, 100 training images, seconds on a CPU), but not a test of the machinery only: cut the gradient between
the loss and the encoder (e.g. a `.detach()` after it) and both fail, because the encoder then stays as it was drawn.
"""
import warnings
import numpy as np, pytest
from sklearn.metrics import cohen_kappa_score

warnings.filterwarnings('ignore', category=FutureWarning)

@pytest.fixture(scope='module')
def fold(tmp_path_factory):
    import os, torch
    os.environ.setdefault('SUPCON_DR_HOME', str(tmp_path_factory.mktemp('home')))
    torch.set_num_threads(1)
    from supcon_dr.data import load_synthetic, preprocess_manifest, patient_folds, fold_split
    m = preprocess_manifest(load_synthetic(n_per_grade=40, size=128), 48, progress=False)
    return fold_split(patient_folds(m, n_splits=2, seed=0), 0)

def _cfg(**kw):
    from supcon_dr.baseline import TrainConfig
    return TrainConfig(size=48, bs=16, device='cpu', progress=False, **kw)

def _qwk(res): return cohen_kappa_score(res.y_true, res.probs.argmax(1), weights='quadratic')

def test_supcon_learns(fold):
    from supcon_dr.probe import fit_supcon_fold, fit_random_fold
    tr, va = fold
    cfg = _cfg(supcon_epochs=12)
    sc, control = fit_supcon_fold(tr, va, cfg), fit_random_fold(tr, va, cfg)
    h = sc.history
    assert h.train_loss.iloc[-1] < 0.95 * h.train_loss.iloc[0], h.train_loss.tolist()   # the loss falls
    assert h.mean_cosine.iloc[-1] < 0.95, h.mean_cosine.tolist()                          # not collapsed
    assert _qwk(sc) > _qwk(control) + 0.05, (_qwk(sc), _qwk(control))                     # the probe beats the control

def test_cross_entropy_learns(fold):
    from supcon_dr.baseline import fit_ce_fold
    from supcon_dr.probe import fit_random_fold, probe_fold
    tr, va = fold
    cfg = _cfg(epochs=12)
    ce, control = fit_ce_fold(tr, va, cfg), fit_random_fold(tr, va, cfg)
    assert ce.history.train_loss.iloc[-1] < 0.8 * ce.history.train_loss.iloc[0], ce.history.train_loss.tolist()
    assert (ce.probs.argmax(1) == ce.y_true).mean() > 0.4 and _qwk(ce) > 0.4, _qwk(ce)      # chance: 0.2 and 0
    assert _qwk(probe_fold(ce.encoder, tr, va, cfg)) > _qwk(control) + 0.05                 # its encoder learnt
