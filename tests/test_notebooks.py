"""Each notebook runs top to bottom through a real Jupyter kernel, as a learner's Jupyter would run it.

Cells flagged with one of settings.ini's `tst_flags` (`slow`, `gpu`, `notest`) are skipped, as `nbdev_test` does:
they hold full-size runs whose outputs are committed."""
import re, time
import nbformat, pytest
from nbclient import NotebookClient
from conftest import ROOT, NBS, notebooks
from configparser import ConfigParser

cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
FLAGS = cfg['DEFAULT']['tst_flags'].split()
_flag_re = re.compile(r'^#\|\s*(' + '|'.join(map(re.escape, FLAGS)) + r')\s*$', re.M)

def _skipped(cell): return cell.cell_type == 'code' and bool(_flag_re.search(cell.source))

@pytest.mark.parametrize('nb_path', notebooks(), ids=lambda p: p.name)
def test_notebook_runs_in_a_kernel(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells = [c for c in nb.cells if not _skipped(c)]
    # the final export cell would rewrite supcon_dr/ in place: the sync test checks export separately
    nb.cells = [c for c in nb.cells if 'nbdev_export()' not in c.source]
    t = time.time()
    NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(NBS)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if o.output_type == 'error']
    assert not errors
    print(f'{nb_path.name}: {time.time()-t:.1f}s')

def test_flags_are_known():
    "A misspelt flag (`#| slwo`) would make a slow cell run in CI: every `#|` directive must be one nbdev knows."
    known = set(FLAGS) | {'export', 'exporti', 'exports', 'hide', 'default_exp', 'echo', 'output', 'code-fold',
                          'eval', 'include', 'hide_input', 'hide_output', 'label', 'fig-cap', 'code-summary',
                          'export_', 'filter_stream', 'exec_doc', 'skip_showdoc', 'skip_exec', 'collapse_output'}
    for nb_path in notebooks():
        for c in nbformat.read(nb_path, as_version=4).cells:
            if c.cell_type != 'code': continue
            for m in re.finditer(r'^#\|\s*([\w-]+)', c.source, re.M):
                assert m.group(1) in known, f'{nb_path.name}: unknown directive #| {m.group(1)}'
