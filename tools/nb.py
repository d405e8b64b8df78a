"""Authoring helper: build a notebook from a py:percent draft, run it, clean it.

    python tools/nb.py run nbs/NN_name.ipynb               # re-execute an existing notebook in place, then clean
    python tools/nb.py draft nbs/NN_name.ipynb DRAFT.py    # notebook -> py:percent draft, to edit

Notebooks in nbs/ are the source of truth; drafts are a convenience and are not committed.
Needs `pip install jupytext` (an authoring tool, not a project dependency).
"""
import sys, subprocess, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

def execute(path, timeout=1800):
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    nb.metadata['kernelspec'] = {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}
    t = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    nbformat.write(nb, path)
    subprocess.run(['nbdev_clean', '--fname', str(path)], check=True)
    print(f'executed {path} in {time.time()-t:.1f}s')

def main():
    cmd, *args = sys.argv[1:]
    if cmd == 'build':
        src, dst = args
        subprocess.run(['jupytext', '--quiet', '--to', 'ipynb', '--output', dst, src], check=True)
        execute(dst)
    elif cmd == 'run': execute(args[0])
    elif cmd == 'draft':
        src, dst = args
        subprocess.run(['jupytext', '--quiet', '--to', 'py:percent', '--output', dst, src], check=True)
    else: sys.exit(__doc__)

if __name__ == '__main__': main()
