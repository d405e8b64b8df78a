"""Packaging: the install files agree with each other, `import supcon_dr` stays light."""
import subprocess, sys, re, ast
from configparser import ConfigParser
from conftest import ROOT

cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini'); cfg = cfg['DEFAULT']

def test_setup_py_does_not_use_pkg_resources():
    tree = ast.parse((ROOT/'setup.py').read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert 'pkg_resources' not in names | mods

def test_nbdev_stack_pins():
    "nbdev 3 refuses settings.ini; execnb 0.2 and fastcore 2 break nbdev 2."
    reqs = cfg['requirements'].split() + cfg['dev_requirements'].split()
    for pin in ['nbdev>=2.4.14,<3', 'execnb>=0.1.12,<0.2', 'fastcore>=1.12.3,<2']: assert pin in reqs, pin

def test_installed_versions_satisfy_settings():
    "What is installed satisfies every requirement in settings.ini (a drift check like `pip check`, for our own pins)."
    from importlib.metadata import version
    from packaging.requirements import Requirement
    for r in map(Requirement, cfg['requirements'].split() + cfg['dev_requirements'].split()):
        v = version(r.name)
        assert r.specifier.contains(v, prereleases=True), f'{r.name} {v} does not satisfy {r}'

def test_pip_check():
    r = subprocess.run([sys.executable, '-m', 'pip', 'check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_import_is_light():
    code = "import sys, supcon_dr; print(sorted(m for m in ('torch','fastai','sklearn','matplotlib','pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == '[]', f'import supcon_dr pulled in {out}'

def test_version_matches_settings():
    import supcon_dr
    assert supcon_dr.__version__ == cfg['version']
