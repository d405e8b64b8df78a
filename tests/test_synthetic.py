"""The synthetic renderer as a library user meets it: its helpers work outside the notebook, its default pixels do
not drift without a new SYNTH_VERSION, and no test fixture or training loop ships in the package."""
import json, os, subprocess, sys
import numpy as np
import pytest
from conftest import ROOT

def test_grid_figure_runs_from_the_library():
    "`_grid_figure` used `plt` without importing it: a NameError everywhere but inside its own notebook."
    code = "from supcon_dr.synthetic import _grid_figure; f = _grid_figure(32, 2); print(len(f.axes))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, 'MPLBACKEND': 'Agg'})
    assert (r.returncode, r.stdout.strip()) == (0, '10'), r.stderr[-2000:]

def test_easy_preset_keeps_the_pixels_of_its_version():
    """The default ('easy') images are those of the renderer that SYNTH_VERSION names, up to rounding.

    The fingerprint holds 8x8 block means per channel; a changed lesion moves a block by several levels, while
    a last-bit difference in float32 maths (another CPU, another numpy) moves none by more than one. If this
    fails because the renderer was changed on purpose, bump SYNTH_VERSION (cached sets are keyed by it) and
    write a new fingerprint."""
    from supcon_dr.synthetic import render_fundus, SYNTH_VERSION
    ref = json.loads((ROOT/'tests'/'synthetic_fingerprint_v5.json').read_text())
    if SYNTH_VERSION != ref['synth_version']: pytest.skip(f'fingerprint is for version {ref["synth_version"]}')
    worst = {}
    for key, blocks in ref['blocks'].items():
        g, p, eye = key.split('-')
        a = np.asarray(render_fundus(int(g), 64, seed=1, patient=p, eye=eye), dtype=float)
        got = np.round(a.reshape(8, 8, 8, 8, 3).mean((1, 3))).astype(int).ravel()
        worst[key] = int(np.abs(got - np.array(blocks)).max())
    assert max(worst.values()) <= 1, {k: v for k, v in worst.items() if v > 1}

def test_difficulty_knobs_change_the_pixels():
    "The fingerprint would notice a knob: 'hard' is far from it."
    from supcon_dr.synthetic import render_fundus
    ref = json.loads((ROOT/'tests'/'synthetic_fingerprint_v5.json').read_text())['blocks']['4-fp0-right']
    a = np.asarray(render_fundus(4, 64, seed=1, patient='fp0', eye='right', difficulty='hard'), dtype=float)
    assert np.abs(np.round(a.reshape(8, 8, 8, 8, 3).mean((1, 3))).ravel() - ref).max() > 5

def test_no_fixture_or_training_loop_in_the_library():
    import supcon_dr.data as data, supcon_dr.synthetic as synthetic
    assert not hasattr(data, '_fake_image')
    assert not hasattr(synthetic, 'quick_resnet_accuracy')
    assert 'torch' not in open(synthetic.__file__).read(), 'the renderer needs no torch'

def test_masks_leave_the_pixels_alone():
    "Asking for the lesion masks draws extra layers only: the image is the same, bit for bit, at every grade and preset."
    from supcon_dr.synthetic import render_fundus, MASK_TYPES
    for g in range(5):
        for d in ('easy', 'hard'):
            kw = dict(seed=2, patient=f'mk{g}', eye='left' if g % 2 else 'right', difficulty=d)
            im, masks = render_fundus(g, 48, return_masks=True, **kw)
            assert np.array_equal(np.asarray(im), np.asarray(render_fundus(g, 48, **kw)))
            assert list(masks) == list(MASK_TYPES) and all(m.shape == (48, 48) and m.dtype == bool for m in masks.values())

def test_dataset_masks_on_disk(tmp_path):
    "`make_synthetic_dataset(masks=True)` writes the same images plus one mask file per image, and its manifest points at them."
    from PIL import Image
    from supcon_dr.synthetic import make_synthetic_dataset, load_masks, lesion_mask
    a = make_synthetic_dataset(tmp_path/'a', n_per_grade=2, size=32, masks=True)
    b = make_synthetic_dataset(tmp_path/'b', n_per_grade=2, size=32)
    assert 'mask_path' in a.columns and 'mask_path' not in b.columns
    for pa, pb, pm, g in zip(a.path, b.path, a.mask_path, a.grade):
        assert np.array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(pb)))
        m = load_masks(pm)
        assert m['field_of_view'].shape == (32, 32) and (g == 0 or lesion_mask(m).any())
