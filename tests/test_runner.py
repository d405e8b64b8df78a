"""The console script `supcon_dr_run`, end to end at a tiny size, as a user runs it."""
import json, math, shutil, subprocess, sys, time
import pytest

TINY = ['--quick', '--n_per_grade', '12', '--size', '32', '--epochs', '2', '--supcon_epochs', '2', '--bs', '16', '--folds', '2']

def _run(*args):
    exe = shutil.which('supcon_dr_run')
    assert exe, 'the console script supcon_dr_run is not installed: pip install -e ".[dev]"'
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=900)

def _csv_losses(out, method, fold):
    "The per-epoch log a fold's training wrote: (first, last) train_loss and the last mean cosine (contrastive)."
    import pandas as pd
    h = pd.read_csv(out/'folds'/f'{method}_fold{fold}'/f'{method}_history.csv')
    return h.train_loss.iloc[0], h.train_loss.iloc[-1], h['mean_cosine'].iloc[-1] if 'mean_cosine' in h else None

def test_runner_end_to_end(tmp_path):
    out = tmp_path/'run'
    r = _run(*TINY, '--out', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out/'results.json').read_text())
    assert list(res['summary']) == ['ce', 'supcon', 'random', 'features', 'ce_probe']     # ce brings its probe
    assert len(res['folds']) == 10 and res['config']['folds'] == 2 and res['config']['preset'] == 'quick'
    assert res['config']['bs'] == 16 and res['config']['lr'] == 3e-3          # an explicit flag over the preset's
    # one training record per trained (method, fold), and it is what the fold's own log says
    recs = {(t['method'], t['fold']): t for t in res['training']}
    assert sorted(recs) == [('ce', 0), ('ce', 1), ('supcon', 0), ('supcon', 1)]
    for (m, f), t in recs.items():
        first, last, cos = _csv_losses(out, m, f)
        assert t['epochs'] == 2 and abs(t['first_train_loss'] - first) < 1e-4 and abs(t['final_train_loss'] - last) < 1e-4, (m, f)
        assert ('collapse_value' in t) == (m == 'supcon')
        if m == 'supcon': assert abs(t['mean_cosine'] - cos) < 1e-4
    assert abs(recs[('supcon', 0)]['collapse_value'] - 3.4340) < 1e-3        # log(2*16 - 1)
    assert {'supcon_vs_ce', 'supcon_vs_ce_probe', 'supcon_vs_random', 'supcon_vs_features', 'ce_vs_features'} <= set(res['comparisons'])
    d = res['comparisons']['supcon_vs_ce']['qwk']
    assert d['corrected'] is True and d['p_holm'] >= d['p_value']
    assert all(v.startswith(('No verdict', 'Control: No verdict')) for v in res['verdicts'])   # 2 folds: too few to decide
    md = (out/'results.md').read_text()
    assert 'Accuracy' in md and '**Training**' in md and '**Every comparison**' in md
    for f in ('confusion.png', 'loss_curves.png', 'severity.png', 'run.log', 'predictions.csv'): assert (out/f).stat().st_size > 0, f
    # not a terminal: one line per epoch, no progress-bar frames
    assert 'supcon fold 0: epoch 2/2:' in r.stdout and '\r' not in r.stdout
    assert 'Accuracy' in r.stdout
    # a rerun resumes: nothing is retrained, same numbers
    r2 = _run(*TINY, '--out', str(out))
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert '(resumed,' in r2.stdout and '(trained,' not in r2.stdout
    res2 = json.loads((out/'results.json').read_text())
    assert res2['summary'] == res['summary'] and res2['training'] == res['training']

def test_features_control_needs_a_field_of_view(tmp_path):
    "Images on which the hand-made statistics cannot find a field of view: one line before anything trains."
    from PIL import Image
    for g in range(5):
        (tmp_path/'data'/str(g)).mkdir(parents=True)
        for i in range(3): Image.new('RGB', (48, 48), (100 + 20 * g, 80, 40 + i)).save(tmp_path/'data'/str(g)/f'p{g}{i}_left.png')
    r = _run('--data', 'folder', '--root', str(tmp_path/'data'), '--folds', '2', '--size', '32', '--out', str(tmp_path/'o'))
    assert r.returncode == 2 and 'no field of view found' in r.stderr and "drop 'features'" in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and not list((tmp_path/'o').glob('folds/*.json'))

@pytest.mark.parametrize('args,expect', [
    (['--data', 'nope'], "unknown --data 'nope'"),
    (['--data', 'aptos'], 'needs --root'),
    (['--quick', '--folds', '1'], '--folds must be at least 2'),
    (['--preset', 'fast'], "unknown --preset 'fast': expected one of quick, cpu, paper"),
    (['--quick', '--lr', '0'], '--lr must be a number > 0, got 0'),
    (['--quick', '--temperature', '-0.1'], '--temperature must be a number > 0'),
    (['--quick', '--size', '5000'], 'larger than the synthetic images, which are rendered at 128 px'),
    (['--quick', '--methods', 'ce,rnc', '--rnc_temperature', '0'], '--rnc_temperature must be a positive number, got 0'),
    (['--quick', '--methods', 'ce,supcon_ord', '--ordinal_kind', 'cubic'], "--ordinal_kind must be one of ('exact', 'linear', 'gaussian'), got 'cubic'"),
    (['--quick', '--jobs', '2', '--num_workers', '2'], '--jobs: jobs=2 runs each training in a worker process, which cannot start DataLoader workers'),
    (['--quick', '--methods', 'ce,byol'], "--methods 'ce,byol': expected a comma-separated list of ce, supcon, simclr, random, prior, features, ce_probe, supcon_ord, rnc"),
    (['--quick', '--repeats', '0'], '--repeats must be a whole number of at least 1'),
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
    assert list(res['summary']) == ['ce', 'supcon', 'random', 'ce_probe'] and len(res['folds']) == 8
    sc = [t for t in res['training'] if t['method'] == 'supcon']
    assert all(abs(t['collapse_value'] - math.log(2 * 2 * 8 - 1)) < 1e-6 for t in sc)   # the global batch of 16 images
    for f in (0, 1):                                                                     # rank 0 alone printed and wrote
        assert r.stdout.count(f'fold {f}       ce:') == 1 and r.stdout.count(f'supcon fold {f}: epoch 2/2') == 1
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
    assert 'ce fold 0: epoch 1/8' not in r.stdout and 'ce fold 0: epoch 8/8' in r.stdout   # resumed after the last saved epoch
    assert len((out/'folds'/'ce_fold0'/'ce_history.csv').read_text().splitlines()) == 1 + 8

def test_torchrun_bad_input_said_once(tmp_path):
    r = _torchrun(*TINY_DDP, '--jobs', '2', '--out', str(tmp_path/'o'))
    assert r.returncode != 0 and r.stderr.count('supcon_dr_run: error: --jobs: jobs=2 under torchrun') == 1, r.stderr[-3000:]
    assert not (tmp_path/'o'/'config.json').exists()

def test_torchrun_ranks_must_share_the_run_folder(tmp_path):
    "Several machines without a shared --out would each resume from their own files and hang: the runner checks first."
    script = tmp_path/'blind.py'
    script.write_text(
        "import os, sys\nfrom pathlib import Path\nfrom supcon_dr.distributed import init_distributed\n"
        "from supcon_dr.experiment import _check_shared_out, UsageError\n"
        "env = init_distributed('gloo')\nout = Path(sys.argv[1]) / f'node{env.rank}'; out.mkdir()   # a folder per 'machine'\n"
        "try: _check_shared_out(out)\nexcept UsageError as e: print(f'rank {env.rank}: {e}')\n"
        "import torch.distributed as dist; dist.barrier(); dist.destroy_process_group()   # a group left up: gloo aborted a rank at exit now and then\n")
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', str(script), str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for rank in (0, 1): assert f'rank {rank}: --out {tmp_path}/node{rank}: rank(s) [1] do not see the files rank 0 writes' in r.stdout, r.stdout
    assert not (tmp_path/'node0'/'.rank0_was_here').exists()               # the probe is gone again
