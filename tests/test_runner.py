"""The console script `supcon_dr_run`, end to end at a tiny size, as a user runs it."""
import json, shutil, subprocess
import pytest

TINY = ['--quick', '--n_per_grade', '12', '--size', '32', '--epochs', '2', '--supcon_epochs', '2', '--bs', '16', '--folds', '2']

def _run(*args):
    exe = shutil.which('supcon_dr_run')
    assert exe, 'the console script supcon_dr_run is not installed: pip install -e ".[dev]"'
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=900)

def test_runner_end_to_end(tmp_path):
    out = tmp_path/'run'
    r = _run(*TINY, '--out', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out/'results.json').read_text())
    assert list(res['summary']) == ['ce', 'supcon', 'random']
    assert len(res['folds']) == 6 and res['config']['folds'] == 2 and res['config']['preset'] == 'quick'
    assert res['config']['bs'] == 16 and res['config']['lr'] == 3e-3          # an explicit flag over the preset's
    # one training record per trained (method, fold), with what "did it learn?" needs
    recs = {(t['method'], t['fold']): t for t in res['training']}
    assert sorted(recs) == [('ce', 0), ('ce', 1), ('supcon', 0), ('supcon', 1)]
    for (m, f), t in recs.items():
        assert t['epochs'] == 2 and t['first_train_loss'] > 0 and t['final_train_loss'] > 0
        assert ('collapse_value' in t) == (m == 'supcon')
    assert abs(recs[('supcon', 0)]['collapse_value'] - 3.4340) < 1e-3        # log(2*16 - 1)
    assert -1 <= recs[('supcon', 0)]['mean_cosine'] < 0.999
    assert {'supcon_vs_ce', 'supcon_vs_random'} <= set(res['comparisons'])
    md = (out/'results.md').read_text()
    assert 'Accuracy' in md and '**Training**' in md
    for f in ('confusion.png', 'loss_curves.png', 'severity.png', 'run.log'): assert (out/f).stat().st_size > 0, f
    # not a terminal: one line per epoch, no progress-bar frames
    assert 'supcon_fold0: epoch 2/2:' in r.stdout and '\r' not in r.stdout
    assert 'Accuracy' in r.stdout
    # a rerun resumes: nothing is retrained, same numbers
    r2 = _run(*TINY, '--out', str(out))
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert '(resumed,' in r2.stdout and '(trained,' not in r2.stdout
    res2 = json.loads((out/'results.json').read_text())
    assert res2['summary'] == res['summary'] and res2['training'] == res['training']

@pytest.mark.parametrize('args,expect', [
    (['--data', 'nope'], "unknown --data 'nope'"),
    (['--data', 'aptos'], 'needs --root'),
    (['--quick', '--folds', '1'], '--folds must be at least 2'),
    (['--preset', 'fast'], "unknown --preset 'fast': expected one of quick, cpu, paper"),
    (['--quick', '--lr', '0'], '--lr must be a number > 0, got 0'),
    (['--quick', '--temperature', '-0.1'], '--temperature must be a number > 0'),
    (['--quick', '--size', '5000'], 'larger than the synthetic images, which are rendered at 128 px'),
    (['--quick', '--methods', 'ce,rnc', '--rnc_temperature', '0'], '--rnc_temperature must be a number > 0, got 0'),
    (['--quick', '--methods', 'ce,supcon_ord', '--ordinal_kind', 'cubic'], "--ordinal_kind must be one of ('exact', 'linear', 'gaussian'), got 'cubic'"),
    (['--quick', '--jobs', '2', '--num_workers', '2'], '--jobs 2 with --num_workers 2'),
    (['--quick', '--methods', 'ce,byol'], "--methods 'ce,byol': expected a comma-separated list of ce, supcon, simclr, supcon_ord, rnc, random"),
])
def test_runner_bad_input(tmp_path, args, expect):
    r = _run(*args, '--out', str(tmp_path/'o'))
    assert r.returncode == 2, r.stderr
    assert expect in r.stderr and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

def test_paper_preset_offline_stops_at_once(tmp_path, monkeypatch):
    "Without the ImageNet weights (and no way to download them) the paper preset stops before loading any data."
    monkeypatch.setenv('SUPCON_DR_OFFLINE', '1'); monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch'))
    r = _run('--preset', 'paper', '--out', str(tmp_path/'o'))
    assert r.returncode == 2, r.stderr
    assert 'needs ImageNet weights' in r.stderr and 'copy it to' in r.stderr and '--preset cpu' in r.stderr
    assert not (tmp_path/'o'/'config.json').exists()

def test_runner_refuses_torchrun(tmp_path, monkeypatch):
    "Under torchrun every rank would run the whole study into the same folder: the runner says so and stops."
    monkeypatch.setenv('WORLD_SIZE', '2'); monkeypatch.setenv('RANK', '0')
    r = _run(*TINY, '--out', str(tmp_path/'o'))
    assert r.returncode == 2 and 'started under torchrun (WORLD_SIZE=2)' in r.stderr, r.stderr
    assert not (tmp_path/'o'/'config.json').exists()
