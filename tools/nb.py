"""Authoring helper: build a notebook from a py:percent draft, run it, clean it.

    python tools/nb.py draft nbs/NN_name.ipynb DRAFT.py    # notebook -> py:percent draft, to edit
    python tools/nb.py build DRAFT.py nbs/NN_name.ipynb    # draft -> notebook, executed in nbs/, cleaned
    python tools/nb.py run nbs/NN_name.ipynb               # re-execute an existing notebook in place, then clean
    python tools/nb.py sync DRAFT.py nbs/NN_name.ipynb     # draft -> notebook, nothing executed: outputs of unchanged cells kept
    python tools/nb.py slim nbs/*.ipynb                    # re-encode the image outputs smaller (done by build and run)

`build` and `run` execute every cell except the `#| slow` / `#| gpu` / `#| notest` cells whose source is unchanged and
that have outputs: those keep the outputs they have in the existing notebook (a measurement taken once is not silently replaced by one
taken on a busy machine). A new or edited slow cell is executed. `--all` executes every cell; `--keep-all` keeps every
flagged cell's old outputs (and executes none of them, even new ones).

Notebooks in nbs/ are the source of truth; drafts are a convenience and are not committed.
Needs `pip install jupytext` (an authoring tool, not a project dependency).
"""
import re, sys, subprocess, time, difflib, base64, io
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

def execute(nb, path, old_outputs, mode='changed', timeout=3 * 3600):   # a study cell on a shared machine can take an hour
    import os
    os.environ.pop('MPLBACKEND', None)   # the kernel inherits it: 'Agg' would silently drop every figure from the outputs
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
    slim(path)
    print(f'executed {path} in {time.time()-t:.1f}s')

def _smaller(data, kind):
    """A re-encoded image if it is smaller: at most 1000 px wide; plots (PNG) as 32-colour PNG (24 when large; octree keeps line colours apart), photo
    grids (JPEG) at quality 40, shrunk by a tenth at a time while over 36 KB and wider than 640 px."""
    from PIL import Image
    raw = base64.b64decode(data)
    im, buf = Image.open(io.BytesIO(raw)), io.BytesIO()
    if im.width > 1000: im = im.resize((1000, round(im.height * 1000 / im.width)), Image.LANCZOS)   # a wide figure: the page is narrower
    if kind == 'image/png':
        im.convert('RGB').quantize(24 if len(raw) > 30_000 else 32, method=Image.Quantize.FASTOCTREE).save(buf, 'PNG', optimize=True)
    else:
        im = im.convert('RGB')
        while True:
            buf = io.BytesIO(); im.save(buf, 'JPEG', quality=40, optimize=True)
            if buf.tell() <= 36_000 or im.width <= 640: break
            im = im.resize((im.width * 9 // 10, im.height * 9 // 10), Image.LANCZOS)
    new = buf.getvalue()
    return base64.b64encode(new).decode() + '\n' if len(new) < 0.9 * len(raw) else data

def slim(path):
    "Re-encode the notebook's image outputs (see `_smaller`) where that makes them smaller."
    nb, before = nbformat.read(path, as_version=4), Path(path).stat().st_size
    for c in nb.cells:
        for o in c.get('outputs', []):
            for k in ('image/png', 'image/jpeg'):
                if k in o.get('data', {}) and len(o["data"][k]) > 12_000: o['data'][k] = _smaller(o['data'][k], k)
    nbformat.write(nb, path)
    subprocess.run(['nbdev_clean', '--fname', str(path)], check=True)   # nbformat's layout is not nbdev_clean's
    print(f'{path}: {before // 1024} KB -> {Path(path).stat().st_size // 1024} KB')

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
    elif cmd == 'sync':   # the sources of the draft, the outputs of identical cells, nothing run: to export before a build
        src, dst = args[0], Path(args[1])
        old, outs = _old_outputs(dst)
        tmp = dst.with_name(f'.{dst.stem}.building.ipynb')
        subprocess.run(['jupytext', '--quiet', '--to', 'ipynb', '--output', str(tmp), src], check=True)
        nb = nbformat.read(tmp, as_version=4)
        if old is not None: _keep_ids(old, nb)
        for c in nb.cells:
            if c.cell_type == 'code': c.outputs, c.execution_count = outs.get(c.source, []), None
        nbformat.write(nb, tmp); tmp.replace(dst)
    elif cmd == 'slim':
        for a in args: slim(Path(a))
    elif cmd == 'draft':
        src, dst = args
        subprocess.run(['jupytext', '--quiet', '--to', 'py:percent', '--output', dst, src], check=True)
    else: sys.exit(__doc__)

if __name__ == '__main__': main()
