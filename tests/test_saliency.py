"""Saliency as a run uses it: masks that survive preprocessing, `explain_fold` on a tiny model, a strict-JSON summary,
and a model left exactly as it was."""
import json
import numpy as np
import pytest

torch = pytest.importorskip('torch')

@pytest.fixture(scope='module')
def fold(tmp_path_factory):
    from supcon_dr.data import load_synthetic, preprocess_manifest, patient_folds, fold_split
    d = tmp_path_factory.mktemp('sal')
    raw = load_synthetic(d/'syn', n_per_grade=3, size=64, seed=1, masks=True)
    pre = patient_folds(preprocess_manifest(raw, 32, 'graham', cache_dir=d/'prep', progress=False), n_splits=2, seed=1)
    return raw, fold_split(pre, 0)[1]

def test_preprocessed_masks_line_up(fold):
    "The pixels that lesions change (against the same eyes at visibility 0) lie in the preprocessed masks."
    from PIL import Image
    from supcon_dr.synthetic import render_fundus, encode_masks, decode_masks, lesion_mask
    from supcon_dr.data import preprocess_image, preprocess_mask
    im, m = render_fundus(4, 96, seed=0, patient='t', return_masks=True)
    im0 = render_fundus(4, 96, seed=0, patient='t', visibility=0)
    for method in ('graham', 'circle', 'original'):
        diff = np.abs(np.asarray(preprocess_image(im, 48, method), int) - np.asarray(preprocess_image(im0, 48, method), int)).max(-1)
        pm = decode_masks(preprocess_mask(encode_masks(m), im, 48, method))
        top = np.argsort(diff.ravel())[-30:]
        assert (lesion_mask(pm) | pm['drusen']).ravel()[top].mean() >= 0.9, method

def test_explain_fold_and_summary(fold):
    from supcon_dr.core import seed_everything
    from supcon_dr.baseline import create_encoder, GradeClassifier
    from supcon_dr.saliency import explain_fold, explanation_summary
    raw, valid = fold
    seed_everything(0)
    model = GradeClassifier(create_encoder('resnet18')).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = explain_fold({'ce': model}, valid, 32, n_images=4, seed=0, integrated_gradients=dict(n_steps=4))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and model.training
    scored = rows[rows.skip.isna()]
    assert len(scored) == 2*min(4, int((valid.grade > 0).sum())) and scored.pointing_game.between(0, 1).all()
    assert set(rows[rows.grade == 0].skip) <= {'grade 0 (no DR)'}
    s = explanation_summary(rows, n_boot=200)
    json.dumps(s, allow_nan=False)
    e = s['ce']['gradcam']
    assert {'pointing_game', 'pointing_game_ci', 'relevance_mass', 'relevance_mass_ci', 'random_map_pointing_game_ci',
            'centre_prior_relevance_mass_ci', 'n_images'} <= set(e)
    with pytest.raises(ValueError, match=r'are \(64, 64\) and the image is \(64, 64\), but the models see \(32, 32\)'):
        explain_fold({'ce': model}, raw[raw.path.isin(valid.source_path)], 32)
    with pytest.raises(TypeError, match='a bare encoder'):
        explain_fold({'supcon': model.encoder}, valid, 32)
