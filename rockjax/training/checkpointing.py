"""Orbax checkpoints: the best state by validation accuracy, and the latest state for resuming.

One `CheckpointManager` keeps two checkpoints at most (orbax's preservation policies, which avoid
the max_to_keep + best_fn pitfall of evicting the newest): the latest epoch, and the epoch with the
highest validation accuracy (the earliest one on ties, as Keras' save_best_only does). Each checkpoint
holds the train state and a small JSON of loop state (epoch, monitors), so a resumed run continues
with the same learning-rate and early-stopping bookkeeping. Saves are atomic: an interrupted save
leaves the previous checkpoints intact, and its temporary files are cleaned up on the next start.
A checkpoint damaged afterwards (a disk error, a partial copy) is not fatal to resuming:
`restore_latest` falls back to the newest checkpoint that restores and moves the damaged newer
ones aside to `checkpoints.damaged/`, saying so; a damaged best checkpoint is one WorkdirError
naming it for eval, predict and export.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from absl import logging

from rockjax.errors import NoCheckpointError, WorkdirError

NOT_BEST = -1.0  # score of epochs that did not improve validation accuracy


def _score(metrics: dict) -> float:
  return metrics['score']


def _several_processes() -> bool:
  return jax.process_count() > 1


def _host_copy(state):
  """The replicated state as numpy arrays. With several processes, pmap's replicated arrays are
  local to each process, which Orbax cannot save as global arrays; their values are the same on
  every process, so the primary process writes them once, and every process reads them back (the
  training loop replicates them onto its devices)."""
  return jax.tree.map(np.asarray, state)


def _short(error: Exception, limit: int = 200) -> str:
  text = ' '.join(f'{type(error).__name__}: {error}'.split())
  return text if len(text) <= limit else text[:limit] + '...'


class Checkpointer:
  """Saves and restores (state, loop) pairs under `directory`, keyed by epoch."""

  def __init__(self, directory: str, read_only: bool = False):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        best_fn=_score, best_mode='max',
        preservation_policy=pp.AnyPreservationPolicy([
            pp.LatestN(n=1),
            pp.BestN(get_metric_fn=_score, reverse=False, n=1,
                     keep_checkpoints_without_metrics=False)]),
        cleanup_tmp_directories=not read_only, enable_async_checkpointing=True,
        read_only=read_only, create=not read_only)
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=('state', 'loop'))

  def save(self, epoch: int, state, loop: dict, val_accuracy: float, val_loss: float,
           is_best: bool) -> None:
    """Saves epoch `epoch` (asynchronously). `is_best` marks a strict val-accuracy improvement."""
    metrics = dict(score=float(val_accuracy) if is_best else NOT_BEST,
                   val_accuracy=float(val_accuracy), val_loss=float(val_loss))
    self._manager.save(epoch, metrics=metrics, args=ocp.args.Composite(
        state=ocp.args.StandardSave(_host_copy(state) if _several_processes() else state),
        loop=ocp.args.JsonSave(loop)))

  def latest_epoch(self) -> int | None:
    return self._manager.latest_step()

  def best_epoch(self) -> int | None:
    return self._manager.best_step()

  def _restore_tree(self, epoch: int, target):
    if _several_processes():  # every process reads the same replicated values, as numpy
      abstract = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), target)
    else:
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return self._manager.restore(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), loop=ocp.args.JsonRestore()))

  def restore(self, epoch: int, target_state):
    """Restores (state, loop) of `epoch` with the shapes, dtypes and shardings of `target_state`.

    A checkpoint written before the train state gained a field (e.g. `ema_params`, None unless
    config.ema_decay > 0) lacks that field; it is restored field by field, and fields that are
    None in `target_state` stay None.
    """
    try:
      restored = self._restore_tree(epoch, target_state)
      return restored['state'], restored['loop']
    except ValueError as error:
      nodes = [f.name for f in dataclasses.fields(target_state)
               if f.metadata.get('pytree_node', True)]
      present = {name: getattr(target_state, name) for name in nodes
                 if getattr(target_state, name) is not None}
      if len(present) == len(nodes):
        raise  # nothing optional to leave out: a real mismatch
      try:
        restored = self._restore_tree(epoch, present)
      except ValueError:
        raise error from None
      return target_state.replace(**restored['state']), restored['loop']

  def restore_best(self, target_state):
    return self._restore_named(self.best_epoch(), target_state, 'best')

  def restore_newest(self, target_state):
    """The newest checkpoint, for reading (eval.checkpoint=latest): one that fails to restore is an
    error here; restore_latest, which resumes training, falls back and moves it aside."""
    return self._restore_named(self.latest_epoch(), target_state, 'latest')

  def _restore_named(self, epoch: int | None, target_state, which: str):
    if epoch is None:
      raise NoCheckpointError(f'no {which} checkpoint in {self.directory}; train first '
                              '(--mode=train) with this --workdir')
    try:
      return self.restore(epoch, target_state)
    except Exception as e:  # TensorStore, JSON and shape errors alike: name the checkpoint
      raise WorkdirError(f'the {which} checkpoint (epoch {epoch}) in {self.directory} cannot be '
                         f'restored: {_short(e)}') from e

  def restore_latest(self, target_state):
    """(epoch, state, loop) of the newest checkpoint that restores, or None without checkpoints.

    Newer checkpoints that fail to restore are moved aside (with a warning) once an older one
    has restored; when none restores, nothing is moved and a WorkdirError lists why."""
    failures = []
    for epoch in sorted(self._manager.all_steps(), reverse=True):
      try:
        state, loop = self.restore(epoch, target_state)
      except Exception as e:  # damaged files surface as many exception types
        failures.append((epoch, e))
        continue
      if failures and jax.process_index() == 0:  # one process moves files on a shared disk
        for bad_epoch, error in failures:
          self._move_aside(bad_epoch, error)
        self._manager.reload()
      return epoch, state, loop
    if failures:
      raise WorkdirError(f'no checkpoint in {self.directory} can be restored ('
                         + '; '.join(f'epoch {e}: {_short(err)}' for e, err in failures)
                         + '); to start over, pass a new --workdir')
    return None

  def _move_aside(self, epoch: int, error: Exception) -> None:
    aside = os.path.join(os.path.dirname(self.directory), 'checkpoints.damaged',
                         f'{epoch}-{time.strftime("%Y%m%d-%H%M%S")}')
    os.makedirs(os.path.dirname(aside), exist_ok=True)
    shutil.move(os.path.join(self.directory, str(epoch)), aside)
    logging.warning('The checkpoint of epoch %d cannot be restored (%s); it is kept aside as %s '
                    'and training resumes from the newest checkpoint that restores.', epoch,
                    _short(error), aside)

  def wait_until_finished(self) -> None:
    """Blocks until background saves are on disk; errors of a failed save surface here."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
