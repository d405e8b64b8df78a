"""The house rules that keep the course readable and changeable, checked on the code as it is:
imports run from later chapters to earlier ones only (but for one leaf module), no private name crosses modules, exported cells stay short,
every chapter ends with its export cell, the runner stays small."""
import ast, json, re
import pytest
from conftest import ROOT, NBS, notebooks

LIB = ROOT/'supcon_dr'

def _default_exp(nb):
    for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)
        if m: return m.group(1)

CHAPTER = {_default_exp(nb): i for i, nb in enumerate(notebooks()) if _default_exp(nb)}   # module -> position in the course

def _imports(py):
    "(module imported from supcon_dr, names, at top level?) for every import of the package's own modules."
    tree = ast.parse(py.read_text(encoding='utf-8'))
    top = set(id(n) for n in tree.body)
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            mod = n.module or ''
            if n.level == 1 and mod: yield mod.split('.')[0], [a.name for a in n.names], id(n) in top
            elif n.level == 1 and not mod:
                for a in n.names: yield a.name, [], id(n) in top
            elif mod.startswith('supcon_dr.'): yield mod.split('.')[1], [a.name for a in n.names], id(n) in top

LEAVES = {'distributed'}   # chapter 10's process helpers and gather: used by the loaders, the loss, the loop and the runner

@pytest.mark.parametrize('mod', sorted(CHAPTER))
def test_imports_run_from_later_chapters_to_earlier_ones(mod):
    later = [(m, CHAPTER.get(m)) for m, _, _ in _imports(LIB/f'{mod}.py')
             if m in CHAPTER and CHAPTER[m] > CHAPTER[mod] and m not in LEAVES]
    assert not later, f'supcon_dr.{mod} (chapter position {CHAPTER[mod]}) imports later chapters: {later}'

@pytest.mark.parametrize('mod', sorted(LEAVES))
def test_a_leaf_that_earlier_chapters_import_imports_nothing_from_the_package(mod):
    own = [m for m, _, _ in _imports(LIB/f'{mod}.py')]
    assert not own, f'supcon_dr.{mod} is imported by earlier chapters, so it may import nothing of the package: {own}'

@pytest.mark.parametrize('mod', sorted(CHAPTER))
def test_no_private_name_crosses_modules_and_few_lazy_imports(mod):
    imps = list(_imports(LIB/f'{mod}.py'))
    private = [(m, n) for m, names, _ in imps for n in names if n.startswith('_')]
    assert not private, f'supcon_dr.{mod} imports private names: {private}'
    lazy = [m for m, _, top in imps if not top]
    assert len(lazy) <= 3, f'supcon_dr.{mod} imports the package lazily {len(lazy)} times: {lazy}'

@pytest.mark.parametrize('nb', notebooks(), ids=lambda p: p.name)
def test_exported_cells_are_short_and_the_last_cell_exports(nb):
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    long = [i for i, c in enumerate(cells) if c['cell_type'] == 'code' and re.match(r'#\|\s*export', ''.join(c['source']))
            and len(''.join(c['source']).splitlines()) > 40]
    assert not long, f'{nb.name}: exported cells over 40 lines: {long}'
    if nb.name != 'index.ipynb':
        last = ''.join(cells[-1]['source'])
        assert 'nbdev_export()' in last and '#| hide' in last, f'{nb.name}: the last cell is not the export cell'

def test_the_runner_stays_small():
    n = len((LIB/'experiment.py').read_text(encoding='utf-8').splitlines())
    assert n < 450, f'supcon_dr/experiment.py has {n} lines: the report and the registries live elsewhere (chapters 01, 04, 07, 08a)'
