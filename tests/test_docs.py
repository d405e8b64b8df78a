"""The docs pipeline: nbdev's pre-processing runs clean, the Quarto configuration is valid, README == index."""
import subprocess, sys, shutil
from pathlib import Path
import yaml, pytest
from conftest import ROOT, NBS, notebooks

def test_readme_matches_index():
    import readme
    assert (ROOT/'README.md').read_text(encoding='utf-8') == readme.render(), \
        'README.md is out of date with nbs/index.ipynb: run `python tools/readme.py`'

def test_results_come_from_the_committed_run():
    """The index/README results section is what `readme_results` makes of the committed results/quick/results.json,
    and that file is a complete run of the README's main command (all five folds, every method, training records)."""
    import json, nbformat
    from supcon_dr.report import readme_results
    res = json.loads((ROOT/'results'/'quick'/'results.json').read_text())
    assert res['config']['preset'] == 'quick' and res['config']['folds'] == 5
    assert {'ce', 'supcon', 'random', 'features', 'ce_probe'} <= set(res['summary'])
    trained = [m for m in res['config']['methods'] if m in ('ce', 'supcon')]
    assert sorted((t['method'], t['fold']) for t in res['training']) == sorted((m, f) for m in trained for f in range(5))
    want = readme_results(res)
    nb = nbformat.read(NBS/'index.ipynb', as_version=4)
    shown = [o['data']['text/markdown'] for c in nb.cells if c.cell_type == 'code' and 'readme_results' in c.source
             for o in c.get('outputs', []) if 'text/markdown' in o.get('data', {})]
    assert shown == [want], 'nbs/index.ipynb shows other results than results/quick/results.json: re-run the notebook'
    assert want in (ROOT/'README.md').read_text(encoding='utf-8'), 'README.md is out of date: run `python tools/readme.py`'

def test_readme_has_the_two_commands():
    text = (ROOT/'README.md').read_text(encoding='utf-8')
    assert 'pip install -e ".[dev]"' in text
    ci = (ROOT/'.ci'/'run').read_text()
    test_cmd = [l for l in text.splitlines() if 'pytest' in l and 'pip install' in l]
    assert test_cmd, 'README has no one-line test command'
    assert test_cmd[0].strip() in ci, '.ci/run must call exactly the README test command'

@pytest.mark.parametrize('path', ['_quarto.yml', 'nbs/_quarto.yml', 'nbs/nbdev.yml',
                                  '.github/workflows/test.yaml', '.github/workflows/deploy.yaml'])
def test_yaml_valid(path):
    d = yaml.safe_load((ROOT/path).read_text())
    assert isinstance(d, dict) and d

def test_quarto_config():
    q = yaml.safe_load((NBS/'_quarto.yml').read_text())
    assert q['project']['type'] == 'website'
    for f in q['metadata-files']:
        assert f == 'sidebar.yml' or (NBS/f).exists(), f'nbs/_quarto.yml names missing {f}'
    assert (NBS/q['format']['html']['css']).exists()

def test_nbdev_yml_is_what_settings_give(tmp_path):
    "nbdev rewrites nbs/nbdev.yml from settings.ini before every docs build: the committed one must agree."
    shutil.copy(ROOT/'settings.ini', tmp_path/'settings.ini'); (tmp_path/'nbs').mkdir()
    code = 'from nbdev.quarto import refresh_quarto_yml; refresh_quarto_yml()'
    subprocess.run([sys.executable, '-c', code], cwd=tmp_path, check=True)
    assert (tmp_path/'nbs'/'nbdev.yml').read_text() == (NBS/'nbdev.yml').read_text()

def test_proc_nbs_and_sidebar(tmp_path):
    """`nbdev_proc_nbs` (what `nbdev_docs` runs before Quarto) on a copy of the project. Quarto itself cannot be
    installed here, so its presence check (which would try to download it) is skipped; nothing else is."""
    for n in ['settings.ini', 'README.md']: shutil.copy(ROOT/n, tmp_path/n)
    shutil.copytree(NBS, tmp_path/'nbs', ignore=shutil.ignore_patterns('_proc', '.quarto', 'sidebar.yml', '.ipynb_checkpoints'))
    shutil.copytree(ROOT/'supcon_dr', tmp_path/'supcon_dr', ignore=shutil.ignore_patterns('__pycache__'))
    code = ('import nbdev.quarto as q; q._ensure_quarto = lambda: None; '
            'q.nbdev_proc_nbs.__wrapped__()')
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    proc = tmp_path/'_proc'
    for nb in notebooks():
        assert (proc/nb.name).exists(), f'{nb.name} was not processed'
    side = yaml.safe_load((tmp_path/'nbs'/'sidebar.yml').read_text())
    contents = str(side['website']['sidebar']['contents'])
    for nb in notebooks(): assert nb.name in contents, f'{nb.name} missing from the sidebar'

def test_docs_processing_runs_no_slow_cell():
    """nbdev's docs pre-processing executes every cell that contains an import (and the export cells). A `#| slow` or
    `#| gpu` cell that imports *and* trains would then train during `nbdev_docs`, for minutes and with an empty cache.
    Such cells keep their imports in a cell of their own."""
    import ast, json, re
    bad = []
    for nb in notebooks():
        for i, c in enumerate(json.loads(nb.read_text(encoding='utf-8'))['cells']):
            src = ''.join(c['source'])
            if c['cell_type'] != 'code' or not re.search(r'^#\|\s*(slow|gpu)\s*$', src, re.M): continue
            tree = ast.parse(src)
            imports = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
            work = [t for t in tree.body if not isinstance(t, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))]
            if imports and work: bad.append(f'{nb.name} cell {i}: {src.splitlines()[1][:60]!r}')
    assert not bad, 'slow cells that docs processing would run (move their imports to a cell of their own):\n' + '\n'.join(bad)
