"""The per-epoch record of a run: `metrics.jsonl` in the workdir and the log line for each epoch.

One JSON object per epoch (train/val loss and accuracy, learning rate, images/s, times). A resumed
run first drops the lines of epochs after its checkpoint, which it is about to run again. A line
that cannot be read (cut short by a crash, edited by hand, not a record) is never dropped silently:
readers skip it, and the resume keeps the original file aside (`metrics.jsonl.damaged-<time>`),
says which lines it could not read, and rebuilds the file from every readable record.
"""

from __future__ import annotations

import json
import os
import time

from absl import logging


def parse(line: str) -> dict | None:
  """The record on one line, or None when the line is not a record (a dict with an int epoch)."""
  try:
    record = json.loads(line)
  except json.JSONDecodeError:
    return None
  if isinstance(record, dict) and isinstance(record.get('epoch'), int):
    return record
  return None


class History:
  def __init__(self, path: str):
    self.path = path

  def load(self) -> tuple[list[dict], list[int]]:
    """(every readable record, the 1-based numbers of the lines that are not records)."""
    if not os.path.exists(self.path):
      return [], []
    records, bad = [], []
    with open(self.path, errors='replace') as f:
      for number, line in enumerate(f, start=1):
        if line.strip():
          record = parse(line)
          if record is None:
            bad.append(number)
          else:
            records.append(record)
    return records, bad

  def read(self) -> list[dict]:
    """The readable records, in file order (unreadable lines are skipped)."""
    return self.load()[0]

  def truncate_after(self, epoch: int) -> None:
    """Keeps the records of epochs <= `epoch`, one per epoch (atomically); no file is created.

    With unreadable lines, the original file is first kept aside, with a warning."""
    if not os.path.exists(self.path):
      self._report_missing(epoch, set())
      return
    records, bad = self.load()
    if bad:
      aside = f'{self.path}.damaged-{time.strftime("%Y%m%d-%H%M%S")}'
      os.replace(self.path, aside)
      logging.warning('%s: line(s) %s could not be read as epoch records; the file is kept as %s '
                      'and rebuilt from its %d readable record(s).', self.path, bad[:20], aside,
                      len(records))
    by_epoch = {r['epoch']: r for r in records if r['epoch'] <= epoch}  # the last of duplicates
    self._report_missing(epoch, set(by_epoch))
    tmp = f'{self.path}.tmp'
    with open(tmp, 'w') as f:
      for e in sorted(by_epoch):
        f.write(json.dumps(by_epoch[e]) + '\n')
    os.replace(tmp, self.path)

  def _report_missing(self, epoch: int, present: set) -> None:
    """One line naming the finished epochs that no record holds (nothing else can rebuild them:
    the checkpoints keep the weights and the best epoch, not each epoch's metrics)."""
    missing = [e for e in range(1, epoch + 1) if e not in present]
    if missing:
      logging.warning('%s has no record of finished epoch(s) %s; their metrics cannot be recovered '
                      '(the checkpoints keep the weights and the best epoch, not per-epoch metrics), '
                      'so metrics.jsonl and curves.png go on without them.', self.path,
                      compact_ranges(missing))

  def append(self, record: dict) -> None:
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
      f.flush()
      os.fsync(f.fileno())


def train_rate(step_metrics: list[dict], seconds: float, first_dispatch=None) -> float | None:
  """Training images/s of an epoch whose steps took `seconds`. With `first_dispatch` (steps,
  seconds), the dispatch that compiled is left out, its images and its time; None when it was the
  whole epoch (one dispatch per epoch): no step ran without compilation to time."""
  if first_dispatch is not None:
    first_steps, first_seconds = first_dispatch
    step_metrics, seconds = step_metrics[first_steps:], seconds - first_seconds
    if not step_metrics:
      return None
  return sum(int(m['count']) for m in step_metrics) / max(seconds, 1e-9)


def compact_ranges(numbers: list[int]) -> str:
  """[1, 2, 3, 5] -> '1-3, 5'."""
  parts, start = [], None
  for i, n in enumerate(numbers):
    if start is None:
      start = n
    if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
      parts.append(str(start) if start == n else f'{start}-{n}')
      start = None
  return ', '.join(parts)


def format_duration(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


def format_rate(images_per_s) -> str:
  """None: the epoch was one dispatch, which compiled (train_rate)."""
  return 'img/s n/a (compiled)' if images_per_s is None else f'{images_per_s:.0f} img/s'


def format_epoch(r: dict, num_epochs: int) -> str:
  return (f'epoch {r["epoch"]}/{num_epochs}  '
          f'train loss {r["train_loss"]:.4f} acc {100 * r["train_accuracy"]:.2f}%  '
          f'val loss {r["val_loss"]:.4f} acc {100 * r["val_accuracy"]:.2f}% '
          f'(best {100 * r["best_val_accuracy"]:.2f}% @{r["best_epoch"]})  '
          f'lr {r["learning_rate"]:.2e}  {format_rate(r["images_per_s"])}  '
          f'epoch {format_duration(r["epoch_seconds"])}  '
          f'elapsed {format_duration(r["elapsed_seconds"])}  ETA {format_duration(r["eta_seconds"])}')
