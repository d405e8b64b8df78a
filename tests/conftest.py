import os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
sys.path.insert(0, str(ROOT / 'tools'))
os.environ.setdefault('MPLBACKEND', 'Agg')

def notebooks():
    "The course's notebooks, in chapter order."
    return sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')))
