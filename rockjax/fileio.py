"""Writing result files atomically: a crash never leaves half a JSON, CSV or .npz file in a workdir
or cache, and an earlier copy of the file stays whole until the new one is complete."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from typing import Iterable, Mapping, Sequence

import numpy as np


@contextlib.contextmanager
def _replacing(path: str, mode: str = 'w', **open_kwargs):
  """Yields a file open for writing beside `path`, renamed over it on success; on any failure
  (the rename included) the temporary file is removed and `path` is left as it was."""
  tmp = f'{path}.{os.getpid()}.tmp'
  try:
    with open(tmp, mode, **open_kwargs) as f:
      yield f
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):  # absent when `open` itself failed
      os.remove(tmp)
    raise


def write_json(path: str, obj, **dump_kwargs) -> None:
  """Writes `obj` as indented JSON to `path`; `dump_kwargs` (e.g. sort_keys, default) go to
  json.dump."""
  with _replacing(path) as f:
    json.dump(obj, f, indent=2, **dump_kwargs)


def write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence]) -> None:
  """Writes one header row and then `rows` to `path`."""
  with _replacing(path, newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def write_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
  """Writes `arrays` as an uncompressed .npz file to `path`."""
  with _replacing(path, 'wb') as f:
    np.savez(f, **arrays)
