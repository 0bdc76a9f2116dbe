"""Config files and command-line overrides: a file's `get_config()`, and a one-line explanation of
every way a `--config=FILE` or `--config.<key>=...` argument can be wrong."""

from __future__ import annotations

import difflib
import importlib.util
import os

import ml_collections

from rockjax.errors import ConfigError


def load_config_file(path: str) -> ml_collections.ConfigDict:
  """`get_config()` of a config file given by path (as --config=path[:arg] names it).

  Every way the file can fail (missing, a folder, a syntax error, an exception while it runs, no
  `get_config`, a result that is not a ConfigDict) is a ConfigError naming the file.
  """
  path, _, arg = path.partition(':')
  if not path:
    raise ConfigError('--config needs a config file, e.g. --config=configs/residual.py')
  if not os.path.exists(path):
    raise ConfigError(f'config file {path!r} does not exist')
  if not os.path.isfile(path):
    raise ConfigError(f'config file {path!r} is not a file')
  spec = importlib.util.spec_from_file_location('rockjax_config_file', path)
  if spec is None:
    raise ConfigError(f'config file {path!r} is not a Python file (expected e.g. configs/rocks.py)')
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except SyntaxError as e:
    raise ConfigError(f'config file {path!r} has a syntax error at line {e.lineno}: {e.msg}') from e
  except Exception as e:  # the user's file: any error it raises is theirs to fix
    raise ConfigError(f'config file {path!r} failed to run: {type(e).__name__}: {e}') from e
  if not callable(getattr(module, 'get_config', None)):
    raise ConfigError(f'config file {path!r} defines no get_config() function')
  try:
    config = module.get_config(arg) if arg else module.get_config()
  except Exception as e:
    raise ConfigError(f'config file {path!r}: get_config() failed: {type(e).__name__}: {e}') from e
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f'config file {path!r}: get_config() returned a {type(config).__name__}, '
                      'not an ml_collections.ConfigDict')
  return config


def unknown_key_message(config: ml_collections.ConfigDict, dotted: str) -> str | None:
  """Why `config.<dotted>` does not exist (with close matches), or None if it does."""
  node, walked = config, []
  for part in dotted.split('.'):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      siblings = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      close = difflib.get_close_matches(part, siblings, n=3)
      where = 'config.' + '.'.join(walked) if walked else 'config'
      hint = f'; did you mean {", ".join(repr(c) for c in close)}?' if close else ''
      return (f'unknown config key config.{dotted}: {where} has no field {part!r}{hint} '
              f'(fields: {", ".join(sorted(siblings))})')
    node = node[part]
    walked.append(part)
  return None


def config_file_argument(argv: list[str], flag: str = 'config') -> str | None:
  """The value of --<flag>=FILE (or --<flag> FILE) in argv, or None."""
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{flag}='):
      return arg.split('=', 1)[1]
    if arg == f'--{flag}' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def check_arguments(argv: list[str], flag: str = 'config') -> None:
  """Loads the --config file and checks that every --config.<key> names a field of it; raises
  ConfigError with a one-line explanation otherwise (absl would print tracebacks)."""
  path = config_file_argument(argv, flag)
  if path is None:
    return  # absl reports a missing --config itself
  config = load_config_file(path)
  for arg in argv:
    if arg.startswith(f'--{flag}.'):
      key = arg[len(flag) + 3:].split('=', 1)[0]
      message = unknown_key_message(config, key)
      if message:
        raise ConfigError(message)
