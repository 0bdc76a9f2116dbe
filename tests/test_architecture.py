"""The package's shape: no import cycle, small modules, a thin entry point, lower layers that never
look up the config, and nothing heavy loaded by importing the training code."""

import ast
import os
import subprocess
import sys

import pytest

from helpers import ROOT

PACKAGE = os.path.join(ROOT, 'rockjax')
MAX_MODULE_LINES = 300
MAX_MAIN_LINES = 60


def modules() -> dict[str, str]:
  """Dotted module name -> file, for every module of the package (packages as their __init__)."""
  found = {}
  for dirpath, dirnames, filenames in os.walk(PACKAGE):
    dirnames[:] = [d for d in dirnames if not d.startswith(('.', '__'))]
    for fn in filenames:
      if fn.endswith('.py'):
        rel = os.path.relpath(os.path.join(dirpath, fn), ROOT)[:-3].replace(os.sep, '.')
        found[rel.removesuffix('.__init__')] = os.path.join(dirpath, fn)
  return found


def _type_checking_only(node: ast.AST) -> bool:
  return isinstance(node, ast.If) and 'TYPE_CHECKING' in ast.unparse(node.test)


def imported(path: str, known: set[str]) -> set[str]:
  """The rockjax modules a file imports anywhere (function-local imports too, since a cycle
  broken by a local import is still a cycle), except under `if TYPE_CHECKING:`."""
  out = set()

  def visit(node):
    if _type_checking_only(node):
      return
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names if a.name.split('.')[0] == 'rockjax')
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and (
        node.module.split('.')[0] == 'rockjax'):
      for a in node.names:  # `from pkg import module` imports the module
        full = f'{node.module}.{a.name}'
        out.add(full if full in known else node.module)
    for child in ast.iter_child_nodes(node):
      visit(child)

  with open(path) as f:
    visit(ast.parse(f.read()))
  return out


def import_graph() -> dict[str, set[str]]:
  found = modules()
  return {name: imported(path, set(found)) - {name} for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of the graph as a path [a, b, ..., a], or None."""
  state, stack = {}, []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 'open':
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    stack.pop()
    state[node] = 'done'
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def test_the_cycle_finder_finds_cycles_and_only_cycles():
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None


def test_the_import_graph_is_read_from_the_source():
  graph = import_graph()
  assert 'rockjax.augment.presets' in graph['rockjax.augment.section']
  assert 'rockjax.data.pipeline' in graph['rockjax.training.feeding']  # a function-local import
  assert 'rockjax.augment.host' not in graph['rockjax.data.pipeline']  # TYPE_CHECKING only


def test_the_package_has_no_import_cycle():
  assert find_cycle(import_graph()) is None


def test_configlib_imports_no_subsystem():
  """configlib is mechanics only: files, overrides, assembling sections. Each subsystem owns its
  section (rockjax/<subsystem>/section.py) and rockjax/schema.py lists them."""
  basics = {'rockjax.errors', 'rockjax.checks', 'rockjax.fileio'}
  for name, deps in import_graph().items():
    if name.startswith('rockjax.configlib'):
      outside = {d for d in deps if not d.startswith('rockjax.configlib')}
      assert outside <= basics, (name, outside - basics)


def test_every_subsystem_owns_its_config_section():
  from rockjax import schema
  owners = {s.name: s.defaults.__module__ for s in schema.SECTIONS}
  assert owners == {'': 'rockjax.training.section', 'model': 'rockjax.models.section',
                    'data': 'rockjax.data.section', 'augment': 'rockjax.augment.section',
                    'eval': 'rockjax.serving.section', 'predict': 'rockjax.serving.section',
                    'export': 'rockjax.serving.section', 'preview': 'rockjax.serving.section'}
  assert set(schema.base_config()) == set(
      k for s in schema.SECTIONS for k in ([s.name] if s.name else s.defaults()))


# The layers, top to bottom (docs/architecture.md); a module belongs to its longest listed prefix.
LAYERS = (
    ('entry points', ('rockjax', 'rockjax.command', 'rockjax.api', 'rockjax.bench')),
    ('command line', ('rockjax.cli',)),
    ('modes: training and after', ('rockjax.training', 'rockjax.serving')),
    ('the config schema', ('rockjax.schema',)),
    ('config sections', ('rockjax.training.section', 'rockjax.serving.section',
                         'rockjax.data.section', 'rockjax.augment.section')),
    ('what sections name', ('rockjax.training.optim', 'rockjax.serving.label_issues')),
    ('data and augmentation', ('rockjax.data', 'rockjax.augment', 'rockjax.datasets')),
    ('weights', ('rockjax.pretrained',)),
    ('networks', ('rockjax.models',)),
    ('config mechanics', ('rockjax.configlib',)),
    ('basics', ('rockjax.errors', 'rockjax.checks', 'rockjax.pixels', 'rockjax.fileio',
                'rockjax.logs', 'rockjax.environment', 'rockjax.plots')),
)


def layer(module: str) -> int:
  """The index of the module's layer in LAYERS (0 is the top)."""
  matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
             if module == prefix or module.startswith(prefix + '.')]
  assert matches, f'{module} is in no layer: add it to LAYERS (and docs/architecture.md)'
  return max(matches)[1]


# What scripts/ may import of the package: the public API (rockjax, rockjax.api), the door for
# benchmarks and checks (rockjax.bench), the command line's helpers and the top-level basics, and
# the TFDS builders users register (rockjax.datasets). Never a subsystem's module directly.
SCRIPT_API = ('rockjax', 'rockjax.api', 'rockjax.bench', 'rockjax.cli', 'rockjax.configlib',
              'rockjax.datasets', 'rockjax.errors', 'rockjax.fileio', 'rockjax.logs',
              'rockjax.plots', 'rockjax.schema')
SCRIPTS = os.path.join(ROOT, 'scripts')


def script_imports() -> dict[str, set[str]]:
  known = set(modules())
  return {fn: imported(os.path.join(SCRIPTS, fn), known) for fn in sorted(os.listdir(SCRIPTS))
          if fn.endswith('.py')}


def test_scripts_use_only_the_public_api_and_bench():
  reached = {fn: {m for m in deps if not any(m == p or m.startswith(p + '.') for p in SCRIPT_API)}
             for fn, deps in script_imports().items()}
  assert not {fn: m for fn, m in reached.items() if m}, reached
  assert 'rockjax.bench' in set().union(*script_imports().values())  # the check reads imports


def test_the_script_check_catches_a_subsystem_import(tmp_path):
  (tmp_path / 'x.py').write_text('def f():\n  from rockjax.data import folder\n')
  assert imported(str(tmp_path / 'x.py'), set(modules())) == {'rockjax.data.folder'}


def test_the_layer_map_places_modules_by_their_longest_prefix():
  assert LAYERS[layer('rockjax.training.loop')][0] == 'modes: training and after'
  assert LAYERS[layer('rockjax.training.section')][0] == 'config sections'
  assert LAYERS[layer('rockjax.models.section')][0] == 'networks'
  assert layer('rockjax.api') < layer('rockjax.cli') < layer('rockjax.schema') < layer(
      'rockjax.data.folder') < layer('rockjax.models.layers') < layer('rockjax.errors')


def test_no_lower_layer_imports_a_higher_one():
  upward = [f'{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})'
            for a, deps in sorted(import_graph().items()) for b in sorted(deps)
            if layer(b) < layer(a)]
  assert not upward, upward


def test_lower_layers_never_import_the_config_module():
  lower = ('rockjax.models', 'rockjax.data.', 'rockjax.augment.', 'rockjax.training.state',
           'rockjax.training.steps', 'rockjax.training.optim', 'rockjax.pretrained',
           'rockjax.checks', 'rockjax.pixels')
  for name, deps in import_graph().items():
    if name.startswith(lower):
      assert not any(d.startswith('rockjax.configlib') for d in deps), (name, deps)


@pytest.mark.parametrize('name,path', sorted(modules().items()))
def test_no_module_is_long(name, path):
  with open(path) as f:
    assert sum(1 for _ in f) <= MAX_MODULE_LINES, name


def test_main_only_names_the_modes():
  with open(os.path.join(ROOT, 'main.py')) as f:
    assert sum(1 for _ in f) < MAX_MAIN_LINES


def test_importing_the_training_and_serving_code_loads_no_heavy_library():
  code = ('import sys\n'
          'import rockjax.cli, rockjax.training.loop, rockjax.training.crossval\n'
          'import rockjax.serving.evaluation, rockjax.serving.predict, rockjax.serving.preview\n'
          'from rockjax import schema\n'
          'c = schema.base_config(); c.augment.where = "device"; schema.validate(c)\n'
          'print(sorted(m for m in ("tensorflow", "tensorflow_datasets", "albumentations", '
          '"cv2", "keras") if m in sys.modules))')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == '[]'


def test_the_networks_know_nothing_above_them():
  """models and pretrained sit under data, augment, training and serving."""
  above = ('rockjax.data', 'rockjax.augment', 'rockjax.training', 'rockjax.serving',
           'rockjax.cli', 'rockjax.configlib')
  for name, deps in import_graph().items():
    if name.startswith(('rockjax.models', 'rockjax.pretrained', 'rockjax.pixels',
                        'rockjax.checks')):
      assert not [d for d in deps if d.startswith(above)], (name, deps)
