"""The console script `supcon_dr_run`, end to end at a tiny size, as a user runs it."""
import json, shutil, subprocess
import pytest

TINY = ['--quick', '--n_per_grade', '12', '--size', '32', '--epochs', '1', '--supcon_epochs', '1',
        '--batch_size', '16', '--folds', '2']

def _run(*args):
    exe = shutil.which('supcon_dr_run')
    assert exe, 'the console script supcon_dr_run is not installed: pip install -e ".[dev]"'
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=900)

def test_runner_end_to_end(tmp_path):
    out = tmp_path/'run'
    r = _run(*TINY, '--out', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out/'results.json').read_text())
    assert {'ce', 'supcon'} <= set(res['summary'])
    for m in ('accuracy', 'balanced_accuracy', 'auc_ovo', 'auc_ovr', 'precision_weighted', 'qwk'):
        assert 0 <= res['summary']['supcon'][m]['mean'] <= 1 or m == 'qwk', m
    assert len(res['folds']) == 6 and res['config']['folds'] == 2
    assert 'Accuracy' in (out/'results.md').read_text()
    for f in ('confusion.png', 'loss_curves.png', 'severity.png', 'run.log'): assert (out/f).stat().st_size > 0, f
    # the table is printed too
    assert 'Accuracy' in r.stdout
    # a rerun resumes: nothing is retrained, same numbers
    r2 = _run(*TINY, '--out', str(out))
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert '(resumed,' in r2.stdout and '(trained,' not in r2.stdout
    assert json.loads((out/'results.json').read_text())['summary'] == res['summary']

@pytest.mark.parametrize('args,expect', [
    (['--data', 'nope'], "unknown --data 'nope'"),
    (['--data', 'aptos'], 'needs --root'),
    (['--quick', '--folds', '1'], '--folds must be at least 2'),
])
def test_runner_bad_input(tmp_path, args, expect):
    r = _run(*args, '--out', str(tmp_path/'o'))
    assert r.returncode == 2
    assert expect in r.stderr and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
