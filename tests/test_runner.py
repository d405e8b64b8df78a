"""The console script `supcon_dr_run`, end to end at a tiny size, as a user runs it."""
import json, math, shutil, subprocess, sys, time
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

TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--no-python', 'supcon_dr_run']
TINY_DDP = [*TINY, '--bs', '8', '--methods', 'ce,supcon,random']     # 15 training images per rank: 1 batch of 8

def _torchrun(*args, **kw):
    assert shutil.which('supcon_dr_run'), 'the console script supcon_dr_run is not installed: pip install -e ".[dev]"'
    return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, timeout=900, **kw)

def test_runner_under_torchrun(tmp_path):
    "Two CPU processes (gloo): one DDP training per (method, fold), rank 0 alone prints and writes, a rerun resumes."
    out = tmp_path/'run'
    r = _torchrun(*TINY_DDP, '--out', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out/'results.json').read_text())
    assert res['config']['world_size'] == 2 and res['config']['bs'] == 8 and res['jobs'] == 1
    assert list(res['summary']) == ['ce', 'supcon', 'random'] and len(res['folds']) == 6
    sc = [t for t in res['training'] if t['method'] == 'supcon']
    assert all(abs(t['collapse_value'] - math.log(2 * 2 * 8 - 1)) < 1e-6 for t in sc)   # the global batch of 16 images
    for f in (0, 1):                                                                     # rank 0 alone printed and wrote
        assert r.stdout.count(f'fold {f}      ce:') == 1 and r.stdout.count(f'supcon_fold{f}: epoch 2/2') == 1
        assert len((out/'folds'/f'ce_fold{f}'/'ce_history.csv').read_text().splitlines()) == 1 + 2
    assert 'training: each training spans 2 processes (DDP, gloo)' in (out/'run.log').read_text()
    assert '8 per process × 2 processes' in (out/'results.md').read_text()
    r2 = _torchrun(*TINY_DDP, '--out', str(out))
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert '(resumed,' in r2.stdout and '(trained,' not in r2.stdout
    assert json.loads((out/'results.json').read_text())['summary'] == res['summary']
    r3 = _run(*TINY_DDP, '--out', str(out))                      # one process into a 2-process folder: refused
    assert r3.returncode == 2 and "world_size: 2 -> 1" in r3.stderr, r3.stderr

def test_torchrun_rank_failure_then_resume(tmp_path):
    "A rank killed mid-fold: rank 0 says so in one line, nothing half-written; the rerun goes on from the last epoch."
    psutil = pytest.importorskip('psutil')
    out, args = tmp_path/'run', [*TINY_DDP, '--epochs', '8']
    p = subprocess.Popen([*TORCHRUN, *args, '--out', str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ck, t0 = out/'folds'/'ce_fold0'/'ce_last.pth', time.time()
    while not ck.exists() and time.time() - t0 < 300 and p.poll() is None: time.sleep(0.01)
    workers = [c for c in psutil.Process(p.pid).children() if c.environ().get('RANK') == '1']
    assert ck.exists() and workers, 'rank 1 had finished before it could be stopped'
    workers[0].kill()
    _, err = p.communicate(timeout=300)
    assert p.returncode != 0
    assert err.count('supcon_dr_run: rank 0 stopped') == 1 and '[rank0]: Traceback' not in err, err[-3000:]
    r = _torchrun(*args, '--out', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'ce_fold0: epoch 1/8' not in r.stdout and 'ce_fold0: epoch 8/8' in r.stdout   # resumed after the last saved epoch
    assert len((out/'folds'/'ce_fold0'/'ce_history.csv').read_text().splitlines()) == 1 + 8

def test_torchrun_bad_input_said_once(tmp_path):
    r = _torchrun(*TINY_DDP, '--jobs', '2', '--out', str(tmp_path/'o'))
    assert r.returncode != 0 and r.stderr.count('supcon_dr_run: error: --jobs 2 under torchrun') == 1, r.stderr[-3000:]
    assert not (tmp_path/'o'/'config.json').exists()

def test_torchrun_ranks_must_share_the_run_folder(tmp_path):
    "Several machines without a shared --out would each resume from their own files and hang: the runner checks first."
    script = tmp_path/'blind.py'
    script.write_text(
        "import os, sys\nfrom pathlib import Path\nfrom supcon_dr.core import init_distributed\n"
        "from supcon_dr.experiment import _check_shared_out, UsageError\n"
        "env = init_distributed('gloo')\nout = Path(sys.argv[1]) / f'node{env.rank}'; out.mkdir()   # a folder per 'machine'\n"
        "try: _check_shared_out(out)\nexcept UsageError as e: print(f'rank {env.rank}: {e}')\n"
        "import torch.distributed as dist; dist.barrier(); dist.destroy_process_group()   # a group left up: gloo aborted a rank at exit now and then\n")
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', str(script), str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for rank in (0, 1): assert f'rank {rank}: --out {tmp_path}/node{rank}: rank(s) [1] do not see the files rank 0 writes' in r.stdout, r.stdout
    assert not (tmp_path/'node0'/'.rank0_was_here').exists()               # the probe is gone again
