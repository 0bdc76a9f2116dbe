"""Orbax checkpoints: round trip, best-by-val-accuracy kept beside the latest, restore errors, and
damaged checkpoints."""

import os

import jax
import numpy as np
import optax
import pytest

from rockjax import models
from rockjax.errors import NoCheckpointError, WorkdirError
from rockjax.training import checkpointing, state as states
from helpers import damage, tiny_config


def small_state(seed=0, ema=False):
  config = tiny_config()
  model = models.create_model(config.model, 3)
  return states.create_train_state(model, optax.adam(1e-3), jax.random.PRNGKey(seed), 16, ema=ema)


def assert_trees_equal(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_round_trip_restores_every_array_and_the_loop_state(tmp_path):
  state = small_state()
  state = state.replace(step=state.step + 7, lr_scale=state.lr_scale * 0.25)
  loop = dict(epoch=3, step=21, plateau=dict(best=0.5, wait=1, scale=0.25), stop_reason='')
  with checkpointing.Checkpointer(str(tmp_path / 'ckpt')) as ckpt:
    ckpt.save(3, state, loop, val_accuracy=0.8, val_loss=0.5, is_best=True)
  restored_state, restored_loop = checkpointing.Checkpointer(str(tmp_path / 'ckpt')).restore(
      3, small_state(seed=1))
  assert_trees_equal(restored_state.params, state.params)
  assert_trees_equal(restored_state.batch_stats, state.batch_stats)
  assert_trees_equal(restored_state.opt_state, state.opt_state)
  assert int(restored_state.step) == int(state.step)
  assert float(restored_state.lr_scale) == 0.25
  assert restored_loop == loop


def test_ema_state_round_trips(tmp_path):
  state = small_state(ema=True)
  state = state.replace(ema_params=jax.tree.map(lambda x: x + 1.0, state.ema_params))
  with checkpointing.Checkpointer(str(tmp_path / 'ckpt')) as ckpt:
    ckpt.save(1, state, dict(epoch=1), val_accuracy=0.5, val_loss=1.0, is_best=True)
  with checkpointing.Checkpointer(str(tmp_path / 'ckpt'), read_only=True) as ckpt:
    restored, _ = ckpt.restore_best(small_state(seed=1, ema=True))
  assert_trees_equal(restored.ema_params, state.ema_params)
  assert_trees_equal(restored.ema_batch_stats, state.ema_batch_stats)


def test_checkpoint_from_before_the_ema_fields_still_restores(tmp_path):
  """Checkpoints written before TrainState had ema_params/ema_batch_stats (rockjax <= 80cf9b3)."""
  state = small_state()
  old_layout = dict(step=state.step + 5, params=state.params, opt_state=state.opt_state,
                    batch_stats=state.batch_stats, lr_scale=state.lr_scale)
  with checkpointing.Checkpointer(str(tmp_path / 'ckpt')) as ckpt:
    ckpt.save(2, old_layout, dict(epoch=2), val_accuracy=0.5, val_loss=1.0, is_best=True)
  with checkpointing.Checkpointer(str(tmp_path / 'ckpt'), read_only=True) as ckpt:
    restored, loop = ckpt.restore_best(small_state(seed=1))
    assert type(restored) is type(state) and restored.ema_params is None
    assert int(restored.step) == int(state.step) + 5 and loop == dict(epoch=2)
    assert_trees_equal(restored.params, state.params)
    # A run that needs EMA weights cannot take this checkpoint: one error naming it.
    with pytest.raises(WorkdirError, match=r'best checkpoint \(epoch 2\) .* cannot be restored'):
      ckpt.restore_best(small_state(seed=1, ema=True))


def test_keeps_latest_and_earliest_max_val_accuracy(tmp_path):
  accuracies = [0.3, 0.6, 0.6, 0.5, 0.55]
  best = -1.0
  with checkpointing.Checkpointer(str(tmp_path / 'ckpt')) as ckpt:
    for epoch, acc in enumerate(accuracies, start=1):
      state = small_state(seed=epoch)
      ckpt.save(epoch, state, dict(epoch=epoch), acc, 1.0 - acc, is_best=acc > best)
      best = max(best, acc)
      ckpt.wait_until_finished()
    assert ckpt.best_epoch() == 2  # the first epoch that reached 0.6
    assert ckpt.latest_epoch() == 5
  kept = sorted(int(d) for d in os.listdir(tmp_path / 'ckpt') if d.isdigit())
  assert kept == [2, 5]
  restored, loop = checkpointing.Checkpointer(str(tmp_path / 'ckpt')).restore_best(small_state())
  assert loop['epoch'] == 2
  assert_trees_equal(restored.params, small_state(seed=2).params)


def test_best_survives_when_latest_is_replaced(tmp_path):
  with checkpointing.Checkpointer(str(tmp_path / 'ckpt')) as ckpt:
    ckpt.save(1, small_state(1), dict(epoch=1), 0.9, 0.1, is_best=True)
    for epoch in range(2, 6):
      ckpt.save(epoch, small_state(epoch), dict(epoch=epoch), 0.1, 2.0, is_best=False)
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'ckpt'))
  assert (ckpt.best_epoch(), ckpt.latest_epoch()) == (1, 5)


def test_restore_best_without_checkpoints_is_a_clear_error(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'empty'))
  with pytest.raises(NoCheckpointError, match='no best checkpoint'):
    ckpt.restore_best(small_state())


def test_leftover_temporary_save_is_ignored_and_the_epoch_can_be_saved_again(tmp_path):
  directory = tmp_path / 'ckpt'
  with checkpointing.Checkpointer(str(directory)) as ckpt:
    ckpt.save(1, small_state(1), dict(epoch=1), 0.5, 1.0, is_best=True)
  # What a process killed in the middle of saving epoch 2 leaves behind.
  (directory / '2.orbax-checkpoint-tmp-123').mkdir()
  ckpt = checkpointing.Checkpointer(str(directory))
  assert ckpt.latest_epoch() == 1
  ckpt.save(2, small_state(2), dict(epoch=2), 0.6, 0.9, is_best=True)
  ckpt.close()
  ckpt = checkpointing.Checkpointer(str(directory))
  assert (ckpt.latest_epoch(), ckpt.best_epoch()) == (2, 2)
  restored, loop = ckpt.restore_best(small_state())
  assert loop == dict(epoch=2)


def best_then_latest(directory):
  """Checkpoints of epoch 1 (the best) and epoch 2 (the latest) in `directory`."""
  with checkpointing.Checkpointer(str(directory)) as ckpt:
    ckpt.save(1, small_state(1), dict(epoch=1), 0.9, 0.1, is_best=True)
    ckpt.save(2, small_state(2), dict(epoch=2), 0.1, 2.0, is_best=False)
  return directory


def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_that_restores(tmp_path):
  directory = best_then_latest(tmp_path / 'ckpt')
  damage(directory, 2)
  ckpt = checkpointing.Checkpointer(str(directory))
  epoch, state, loop = ckpt.restore_latest(small_state())
  assert (epoch, loop) == (1, dict(epoch=1))
  assert_trees_equal(state.params, small_state(1).params)
  assert ckpt.latest_epoch() == 1  # the damaged one is out of the manager's view ...
  aside = os.listdir(tmp_path / 'checkpoints.damaged')
  assert len(aside) == 1 and aside[0].startswith('2-')  # ... and kept, not deleted
  ckpt.save(2, small_state(3), dict(epoch=2), 0.2, 1.5, is_best=False)  # the epoch saves again
  ckpt.close()


def test_when_no_checkpoint_restores_nothing_is_moved_and_the_error_lists_them(tmp_path):
  directory = best_then_latest(tmp_path / 'ckpt')
  damage(directory, 1)
  damage(directory, 2)
  ckpt = checkpointing.Checkpointer(str(directory))
  with pytest.raises(WorkdirError, match=r'no checkpoint .* can be restored \(epoch 2: .*epoch 1: '):
    ckpt.restore_latest(small_state())
  assert sorted(d for d in os.listdir(directory) if d.isdigit()) == ['1', '2']
  assert checkpointing.Checkpointer(str(tmp_path / 'none')).restore_latest(small_state()) is None


def test_a_damaged_best_checkpoint_is_one_error_naming_it(tmp_path):
  directory = tmp_path / 'ckpt'
  with checkpointing.Checkpointer(str(directory)) as ckpt:
    ckpt.save(1, small_state(1), dict(epoch=1), 0.9, 0.1, is_best=True)
  damage(directory, 1)
  with pytest.raises(WorkdirError, match=r'the best checkpoint \(epoch 1\) in .* cannot be '):
    checkpointing.Checkpointer(str(directory), read_only=True).restore_best(small_state())
