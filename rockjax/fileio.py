"""Writing result files atomically: a crash never leaves half a JSON file in a workdir."""

from __future__ import annotations

import json
import os


def write_json(path: str, obj, **dump_kwargs) -> None:
  """Writes `obj` as indented JSON to `path` via a temporary file and a rename; `dump_kwargs`
  (e.g. sort_keys, default) go to json.dump."""
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=2, **dump_kwargs)
  os.replace(tmp, path)
