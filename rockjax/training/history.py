"""The per-epoch record of a run: `metrics.jsonl` in the workdir and the log line for each epoch.

One JSON object per epoch (train/val loss and accuracy, learning rate, images/s, times). A resumed
run first drops the lines of epochs after its checkpoint, which it is about to run again.
"""

from __future__ import annotations

import json
import os


class History:
  def __init__(self, path: str):
    self.path = path

  def read(self) -> list[dict]:
    if not os.path.exists(self.path):
      return []
    records = []
    with open(self.path) as f:
      for line in f:
        line = line.strip()
        if line:
          try:
            records.append(json.loads(line))
          except json.JSONDecodeError:
            break  # a line cut short by a crash: everything before it is intact
    return records

  def truncate_after(self, epoch: int) -> None:
    """Keeps the records of epochs <= `epoch` (atomically); no file is created."""
    if not os.path.exists(self.path):
      return
    kept = [r for r in self.read() if r['epoch'] <= epoch]
    tmp = f'{self.path}.tmp'
    with open(tmp, 'w') as f:
      for r in kept:
        f.write(json.dumps(r) + '\n')
    os.replace(tmp, self.path)

  def append(self, record: dict) -> None:
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
      f.flush()
      os.fsync(f.fileno())


def format_duration(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


def format_epoch(r: dict, num_epochs: int) -> str:
  return (f'epoch {r["epoch"]}/{num_epochs}  '
          f'train loss {r["train_loss"]:.4f} acc {100 * r["train_accuracy"]:.2f}%  '
          f'val loss {r["val_loss"]:.4f} acc {100 * r["val_accuracy"]:.2f}% '
          f'(best {100 * r["best_val_accuracy"]:.2f}% @{r["best_epoch"]})  '
          f'lr {r["learning_rate"]:.2e}  {r["images_per_s"]:.0f} img/s  '
          f'epoch {format_duration(r["epoch_seconds"])}  '
          f'elapsed {format_duration(r["elapsed_seconds"])}  ETA {format_duration(r["eta_seconds"])}')
