"""Writing result files atomically: a crash never leaves half a JSON, CSV or .npz file in a workdir
or cache, and an earlier copy of the file stays whole until the new one is complete."""

from __future__ import annotations

import contextlib
import csv
import hashlib
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


# A spreadsheet reads a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def _runs_as_formula(text: str) -> bool:
  """Starts with a formula character, after any number of protecting quotes."""
  return text.startswith(FORMULA_STARTS) or (text.startswith("'") and _runs_as_formula(text[1:]))


def spreadsheet_safe(cell):
  """A text cell that a spreadsheet would run as a formula (a class folder named '=1+1', a file
  named '@x.png') prefixed with a quote, as OWASP advises; numbers, and text that reads as a
  number, unchanged. `read_cell` undoes exactly this, whatever the text (quotes included)."""
  if isinstance(cell, str) and not _is_number(cell) and _runs_as_formula(cell):
    return "'" + cell
  return cell


def read_cell(cell: str) -> str:
  """A cell as it was before `spreadsheet_safe` (for the readers of rockjax's own CSV files)."""
  return cell[1:] if cell.startswith("'") and _runs_as_formula(cell[1:]) else cell


def write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence]) -> None:
  """Writes one header row and then `rows` to `path`; text cells made spreadsheet-safe."""
  with _replacing(path, newline='') as f:
    writer = csv.writer(f)
    writer.writerow([spreadsheet_safe(c) for c in header])
    writer.writerows([spreadsheet_safe(c) for c in row] for row in rows)


def write_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
  """Writes `arrays` as an uncompressed .npz file to `path`."""
  with _replacing(path, 'wb') as f:
    np.savez(f, **arrays)


def sha256(path: str) -> str:
  """The file's SHA-256, hex, read in 1 MiB blocks."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()
