"""A config as a file of a run: JSON in and out, defaults for fields added since, differences,
and dotted-key access."""

from __future__ import annotations

import json

import ml_collections

from rockjax import fileio
from rockjax.checks import get_value  # noqa: F401  (configlib.get_value)


def set_value(config: ml_collections.ConfigDict, key: str, value) -> None:
  """config.<dotted key> = value (the field must exist)."""
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
  node[leaf] = value


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)


def save(config: ml_collections.ConfigDict, path: str) -> None:
  """Writes the resolved config as JSON, atomically (a crash never leaves half a file)."""
  fileio.write_json(path, config.to_dict(), sort_keys=True, default=list)


def read(path: str) -> ml_collections.ConfigDict:
  """A saved config as it was written (rockjax.schema.load adds the defaults of newer fields)."""
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def merged(base: ml_collections.ConfigDict,
           config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`base` (a fresh copy, changed in place) updated with every field `config` sets."""
  base.update(config)  # recursive for nested ConfigDicts
  return base


def differences(a: ml_collections.ConfigDict, b: ml_collections.ConfigDict,
                ignore: tuple[str, ...] = ()) -> list[str]:
  """Dotted keys whose values differ between two configs (lists and tuples compare equal)."""
  fa, fb = flatten(json.loads(to_json(a))), flatten(json.loads(to_json(b)))
  keys = sorted(set(fa) | set(fb))
  return [k for k in keys if fa.get(k) != fb.get(k)
          and not any(k == i or k.startswith(i + '.') for i in ignore)]


def flatten(d: dict, prefix: str = '') -> dict:
  """A nested dict as one level of dotted keys: {'data': {'dir': ''}} -> {'data.dir': ''}."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out
