"""Authoring helper: build a notebook from a py:percent draft, run it, clean it.

    python tools/nb.py draft nbs/NN_name.ipynb DRAFT.py    # notebook -> py:percent draft, to edit
    python tools/nb.py build DRAFT.py nbs/NN_name.ipynb    # draft -> notebook, executed in nbs/, cleaned
    python tools/nb.py run nbs/NN_name.ipynb               # re-execute an existing notebook in place, then clean

`build` and `run` execute every cell except the `#| slow` / `#| gpu` / `#| notest` cells whose source is unchanged and
that have outputs: those keep the outputs they have in the existing notebook (a measurement taken once is not silently replaced by one
taken on a busy machine). A new or edited slow cell is executed. `--all` executes every cell; `--keep-all` keeps every
flagged cell's old outputs (and executes none of them, even new ones).

Notebooks in nbs/ are the source of truth; drafts are a convenience and are not committed.
Needs `pip install jupytext` (an authoring tool, not a project dependency).
"""
import re, sys, subprocess, time, difflib
from configparser import ConfigParser
from pathlib import Path
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
_cfg = ConfigParser(delimiters=['=']); _cfg.read(ROOT/'settings.ini')
FLAGS = _cfg['DEFAULT']['tst_flags'].split()
_flag_re = re.compile(r'^#\|\s*(' + '|'.join(map(re.escape, FLAGS)) + r')\s*$', re.M)

def flagged(cell): return cell.cell_type == 'code' and bool(_flag_re.search(cell.source))

def _keep_ids(old, nb):
    "Reuse the old cell ids where cells match, so that diffs stay small."
    a, b = [c.source for c in old.cells], [c.source for c in nb.cells]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == 'equal' or (tag == 'replace' and i2 - i1 == j2 - j1):
            for i, j in zip(range(i1, i2), range(j1, j2)): nb.cells[j].id = old.cells[i].id

def execute(nb, path, old_outputs, mode='changed', timeout=3600):
    nb.metadata['kernelspec'] = {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}})
    t = time.time()
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != 'code': continue
            if flagged(cell) and mode != 'all' and (old_outputs.get(cell.source) or mode == 'keep-all'):
                cell.outputs = old_outputs.get(cell.source, []); continue
            t0 = time.time()
            try: client.execute_cell(cell, i)
            except Exception:
                print(f'cell {i} failed:\n' + '\n'.join(cell.source.splitlines()[:12]), file=sys.stderr); raise
            if time.time() - t0 > 5: print(f'  cell {i}: {time.time()-t0:.1f}s', flush=True)
    nbformat.write(nb, path)
    subprocess.run(['nbdev_clean', '--fname', str(path)], check=True)
    print(f'executed {path} in {time.time()-t:.1f}s')

def _old_outputs(path):
    if not path.exists(): return None, {}
    old = nbformat.read(path, as_version=4)
    return old, {c.source: c.get('outputs', []) for c in old.cells if c.cell_type == 'code'}

def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    mode = 'all' if '--all' in sys.argv else 'keep-all' if '--keep-all' in sys.argv else 'changed'
    if not args: sys.exit(__doc__)
    cmd, *args = args
    if cmd == 'build':
        src, dst = args[0], Path(args[1])
        old, outs = _old_outputs(dst)
        tmp = dst.with_name(f'.{dst.stem}.building.ipynb')   # the notebook in nbs/ is replaced only when every cell ran
        subprocess.run(['jupytext', '--quiet', '--to', 'ipynb', '--output', str(tmp), src], check=True)
        nb = nbformat.read(tmp, as_version=4)
        if old is not None: _keep_ids(old, nb)
        try: execute(nb, tmp, outs, mode)
        except BaseException: tmp.unlink(missing_ok=True); raise
        tmp.replace(dst)
    elif cmd == 'run':
        path = Path(args[0]); old, outs = _old_outputs(path)
        execute(old, path, outs, mode)
    elif cmd == 'draft':
        src, dst = args
        subprocess.run(['jupytext', '--quiet', '--to', 'py:percent', '--output', dst, src], check=True)
    else: sys.exit(__doc__)

if __name__ == '__main__': main()
