"""The training loop end to end on the generated set: it learns, it resumes exactly, it keeps the
best checkpoint, it refuses what would corrupt a workdir, and it stops cleanly on a NaN loss."""

import json
import os

import jax
import numpy as np
import pytest

from rockjax import errors
from rockjax.data import dataset as datasets
from rockjax.training import (checkpointing, feeding, history, loop, optim, runtime, state as states,
                              steps)
from helpers import comparable_records, tiny_config


def records(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]




@pytest.fixture(scope='module')
def learned_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('learn'))
  config = tiny_config(num_epochs=10, data__synthetic__num_per_class=80, data__image_size=32,
                       augment__preset='flip')
  summary = loop.train_and_evaluate(config, workdir)
  return config, workdir, summary


def test_tiny_run_really_learns(learned_run):
  _, workdir, summary = learned_run
  rs = records(workdir)
  assert [r['epoch'] for r in rs] == list(range(1, 11))
  assert rs[-1]['train_loss'] < 0.8 * rs[0]['train_loss']
  # 4 balanced classes, 80 validation images: chance is 0.25 +- 0.05; seeds 0-1 reach 0.5-0.6.
  assert summary['best_val_accuracy'] >= 0.45, summary
  assert rs[-1]['train_accuracy'] >= 0.45
  assert summary['best_val_accuracy'] == max(r['val_accuracy'] for r in rs)
  for r in rs:
    assert np.isfinite([r['train_loss'], r['val_loss'], r['images_per_s']]).all()
    assert r['learning_rate'] == pytest.approx(3e-3)


def test_a_run_on_the_generated_set_says_what_its_figure_means(tmp_path, monkeypatch):
  lines = []  # what the loop logs, whatever another test did to absl's verbosity or handlers
  monkeypatch.setattr(loop.logging, 'info', lambda msg, *args: lines.append(str(msg) % args if args
                                                                          else str(msg)))
  loop.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path / 'generated'))
  assert any('says nothing about your photos' in line for line in lines)
  lines.clear()  # a user's folder gets no such line
  loop.train_and_evaluate(tiny_config(num_epochs=1, data__dir=datasets.data_root(
      tiny_config().data)), str(tmp_path / 'folder'))
  assert any(line.startswith('Done: val accuracy') and 'the final and the best epoch' in line
             for line in lines)  # one epoch: no best-versus-final to explain
  assert not any('says nothing about' in line for line in lines)


def test_workdir_holds_config_split_report_and_class_names(learned_run):
  config, workdir, _ = learned_run
  for name in ('config.json', 'split.json', 'data_report.json', 'class_names.json',
               'metrics.jsonl'):
    assert os.path.exists(os.path.join(workdir, name)), name
  split = json.load(open(os.path.join(workdir, 'split.json')))
  assert len(split['val']) == 80 and len(split['train']) == 240
  assert not set(split['val']) & set(split['train'])


def test_best_checkpoint_is_the_earliest_best_epoch_and_reproduces_its_accuracy(learned_run):
  config, workdir, summary = learned_run
  rs = records(workdir)
  best_epoch = int(np.argmax([r['val_accuracy'] for r in rs])) + 1  # argmax: first maximum
  assert summary['best_epoch'] == best_epoch
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
  assert ckpt.best_epoch() == best_epoch and ckpt.latest_epoch() == 10
  dataset = datasets.load_dataset(config, workdir, write=False)
  _, state = states.abstract_train_state(config, len(dataset.class_names))
  state, saved = ckpt.restore_best(state)
  assert saved['epoch'] == best_epoch
  rt = runtime.make_runtime(config)
  result = feeding.evaluate(steps.build_eval_step(rt.devices), steps.replicate(state, rt.mesh),
                          dataset.val, config, rt)
  assert result['count'] == len(dataset.val)
  assert result['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-6)


def test_finished_run_is_a_no_op(learned_run):
  config, workdir, summary = learned_run
  before = records(workdir)
  again = loop.train_and_evaluate(config, workdir)
  assert again['epochs'] == 10 and again['best_epoch'] == summary['best_epoch']
  assert records(workdir) == before


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
  """Two epochs, then the same command with more epochs == one uninterrupted run."""
  full = tiny_config(num_epochs=4, augment__preset='flip_bright', model__dropout=0.2,
                     schedule='plateau', plateau__patience=1)
  loop.train_and_evaluate(full, str(tmp_path / 'full'))
  first = tiny_config(num_epochs=2, augment__preset='flip_bright', model__dropout=0.2,
                      schedule='plateau', plateau__patience=1)
  loop.train_and_evaluate(first, str(tmp_path / 'resumed'))
  assert len(records(tmp_path / 'resumed')) == 2
  summary = loop.train_and_evaluate(full, str(tmp_path / 'resumed'))
  assert summary['epochs'] == 4
  a, b = comparable_records(tmp_path / 'full'), comparable_records(tmp_path / 'resumed')
  assert [r['epoch'] for r in b] == [1, 2, 3, 4]
  for ra, rb in zip(a, b):
    assert ra.keys() == rb.keys()
    for k in ra:
      assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), (ra['epoch'], k)


def test_two_runs_with_the_same_seed_give_identical_metrics(tmp_path):
  config = tiny_config(num_epochs=2, augment__preset='crop', model__dropout=0.3)
  loop.train_and_evaluate(config, str(tmp_path / 'a'))
  loop.train_and_evaluate(config, str(tmp_path / 'b'))
  assert comparable_records(tmp_path / 'a') == comparable_records(tmp_path / 'b')


def test_runs_on_several_devices(tmp_path):
  config = tiny_config(num_epochs=1, num_devices=4)
  summary = loop.train_and_evaluate(config, str(tmp_path))
  assert summary['epochs'] == 1 and 0.0 <= summary['best_val_accuracy'] <= 1.0


def test_batch_that_does_not_divide_over_devices_is_refused(tmp_path):
  config = tiny_config(num_devices=3)
  with pytest.raises(errors.ConfigError, match='config.batch_size: 32 does not divide over 3'):
    loop.train_and_evaluate(config, str(tmp_path))


def test_more_devices_than_exist_is_refused(tmp_path):
  config = tiny_config(num_devices=jax.local_device_count() + 1)
  with pytest.raises(errors.ConfigError, match='config.num_devices'):
    loop.train_and_evaluate(config, str(tmp_path))


def test_workdir_with_another_config_is_refused_and_left_intact(tmp_path):
  loop.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))
  before = sorted(os.listdir(tmp_path))
  saved = open(tmp_path / 'config.json').read()
  with pytest.raises(errors.WorkdirError, match=r'changed: \[.model\.dropout.\]'):
    loop.train_and_evaluate(tiny_config(num_epochs=1, model__dropout=0.5), str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == before
  assert open(tmp_path / 'config.json').read() == saved


def test_unwritable_workdir_is_refused_before_training(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('not a folder')
  with pytest.raises(errors.WorkdirError, match='not writable'):
    loop.train_and_evaluate(tiny_config(), str(blocker / 'run'))


def test_non_finite_loss_stops_with_the_step_and_writes_no_bad_epoch(tmp_path):
  config = tiny_config(num_epochs=3, learning_rate=1e30)
  with pytest.raises(errors.NonFiniteLossError, match=r'at step \d+ \(epoch 1'):
    loop.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(tmp_path / 'metrics.jsonl') or records(tmp_path) == []
  assert checkpointing.Checkpointer(str(tmp_path / 'checkpoints')).latest_epoch() is None


def test_too_little_disk_space_is_refused_before_training(tmp_path, monkeypatch):
  import collections
  import shutil
  usage = collections.namedtuple('usage', 'total used free')
  monkeypatch.setattr(shutil, 'disk_usage', lambda path: usage(10**9, 10**9 - 1000, 1000))
  with pytest.raises(errors.WorkdirError, match='MiB free'):
    loop.train_and_evaluate(tiny_config(), str(tmp_path))
  assert not os.path.exists(tmp_path / 'metrics.jsonl')
  assert not os.path.exists(tmp_path / 'checkpoints')


def test_a_disk_that_fills_during_training_is_one_line_and_loses_nothing(tmp_path, monkeypatch):
  """An Orbax RESOURCE_EXHAUSTED used to end the run with about 140 lines of traceback."""
  save = checkpointing.Checkpointer.save

  def full_at_epoch_2(self, epoch, *args, **kwargs):
    if epoch == 2:
      raise ValueError('RESOURCE_EXHAUSTED: write failed') from OSError(28, 'No space left on device')
    return save(self, epoch, *args, **kwargs)

  monkeypatch.setattr(checkpointing.Checkpointer, 'save', full_at_epoch_2)
  with pytest.raises(errors.WorkdirError) as caught:
    loop.train_and_evaluate(tiny_config(num_epochs=3), str(tmp_path))
  message = str(caught.value)
  assert 'filled up' in message and 'MiB free now' in message and '\n' not in message
  assert 'the checkpoint of epoch 1 is kept: free space and rerun the same command' in message
  monkeypatch.setattr(checkpointing.Checkpointer, 'save', save)
  summary = loop.train_and_evaluate(tiny_config(num_epochs=3), str(tmp_path))  # space is back
  assert summary['epochs'] == 3 and [r['epoch'] for r in records(tmp_path)] == [1, 2, 3]


def test_the_space_check_counts_the_checkpoints_a_resume_rotates_out(tmp_path, monkeypatch):
  """89 MiB free was refused after a disk-full event, for a run that needed far less."""
  import collections
  import shutil
  from rockjax.training import workdir as workdirs
  state = {'w': np.zeros(2**20, np.float32)}  # 4 MiB
  usage = collections.namedtuple('usage', 'total used free')
  free = 3 * 4 * 2**20 + workdirs.FREE_SPACE_MARGIN - 2**20  # 1 MiB short for a fresh run
  monkeypatch.setattr(shutil, 'disk_usage', lambda path: usage(10**10, 10**9, free))
  with pytest.raises(errors.WorkdirError, match='MiB free'):
    workdirs.check_free_space(str(tmp_path), state)
  (tmp_path / 'checkpoints' / '1').mkdir(parents=True)
  (tmp_path / 'checkpoints' / '1' / 'state').write_bytes(bytes(4 * 2**20))  # one held checkpoint
  workdirs.check_free_space(str(tmp_path), state)


def test_loop_state_round_trips_through_the_checkpoints_json():
  config = tiny_config(schedule='plateau')
  fresh = lambda: loop.Loop(plateau=optim.ReduceOnPlateau.from_config(config),
                            stopper=optim.EarlyStopping(3))
  a = fresh()
  a.epoch, a.step, a.elapsed_seconds, a.stop_reason = 7, 70, 12.5, 'early_stopping'
  a.final_val_accuracy = 0.7
  a.plateau.update(1.0)
  a.stopper.update(5, 0.75)
  saved = json.loads(json.dumps(a.to_json()))
  # The keys checkpoints have always held, so runs saved before the Loop class still resume, and
  # the final epoch's val accuracy (added later).
  old_keys = {'epoch', 'step', 'elapsed_seconds', 'stop_reason', 'plateau', 'early_stopping'}
  assert set(saved) == old_keys | {'final_val_accuracy'}
  b = fresh()
  b.load_json(saved)
  assert b.to_json() == a.to_json() and b.finished(num_epochs=100)
  assert not fresh().finished(num_epochs=1)
  older = fresh()  # a checkpoint saved before final_val_accuracy: unknown, not an error
  older.load_json({k: v for k, v in saved.items() if k in old_keys})
  assert older.final_val_accuracy is None and older.epoch == 7


def test_bfloat16_run_learns_with_float32_state(tmp_path):
  """Mixed precision: bf16 activations and convolutions, float32 parameters, optimiser state and
  BatchNorm statistics (the fast path on GPUs and TPUs)."""
  config = tiny_config(num_epochs=10, data__synthetic__num_per_class=80, data__image_size=32,
                       augment__preset='flip', model__dtype='bfloat16')
  summary = loop.train_and_evaluate(config, str(tmp_path))
  rs = records(tmp_path)
  assert rs[-1]['train_loss'] < 0.8 * rs[0]['train_loss']
  assert summary['best_val_accuracy'] >= 0.45, summary  # chance: 0.25 +- 0.05
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'checkpoints'), read_only=True)
  _, state = states.abstract_train_state(config, 4)
  state, _ = ckpt.restore(ckpt.latest_epoch(), state)
  ckpt.close()
  for tree in (state.params, state.batch_stats, state.opt_state):
    assert {x.dtype for x in jax.tree.leaves(tree) if np.ndim(x)} == {np.dtype('float32')}


def test_a_damaged_line_in_metrics_is_kept_aside_and_no_epoch_is_lost(tmp_path):
  """A bad line in the middle (or a record without an epoch) used to end the reading there, and
  the resume then rewrote the file without every later epoch."""
  loop.train_and_evaluate(tiny_config(num_epochs=3), str(tmp_path))
  path = tmp_path / 'metrics.jsonl'
  lines = path.read_text().splitlines()
  damaged = [lines[0], '{"this line was cut', '{"no_epoch": true}', lines[1], lines[2]]
  path.write_text('\n'.join(damaged) + '\n')
  summary = loop.train_and_evaluate(tiny_config(num_epochs=4), str(tmp_path))
  assert summary['epochs'] == 4
  assert [r['epoch'] for r in records(tmp_path)] == [1, 2, 3, 4]
  aside = [p for p in os.listdir(tmp_path) if p.startswith('metrics.jsonl.damaged-')]
  assert len(aside) == 1 and (tmp_path / aside[0]).read_text().splitlines() == damaged


@pytest.mark.parametrize('damage_kind', ['deleted', 'best line damaged'])
def test_a_lost_best_epoch_record_does_not_crash_the_resume(tmp_path, monkeypatch, caplog,
                                                            damage_kind):
  """curves.png looked the best epoch's record up with next() and no default: with that record
  gone, every rerun trained one epoch, saved it and died with StopIteration."""
  update = optim.EarlyStopping.update
  monkeypatch.setattr(optim.EarlyStopping, 'update',  # epoch 1 stays the best
                      lambda self, epoch, accuracy: update(self, epoch, 0.9 if epoch == 1 else 0.1))
  loop.train_and_evaluate(tiny_config(num_epochs=2, curves=True), str(tmp_path))
  path = tmp_path / 'metrics.jsonl'
  if damage_kind == 'deleted':
    path.unlink()
  else:
    lines = path.read_text().splitlines()
    path.write_text('\n'.join(['{"cut', lines[1]]) + '\n')
  os.remove(tmp_path / 'curves.png')
  with caplog.at_level('WARNING'):
    summary = loop.train_and_evaluate(tiny_config(num_epochs=3, curves=True), str(tmp_path))
  assert summary['epochs'] == 3 and summary['best_epoch'] == 1
  assert summary['best_val_accuracy'] == pytest.approx(0.9)
  assert [r['epoch'] for r in records(tmp_path)] == ([3] if damage_kind == 'deleted' else [2, 3])
  assert f'no record of finished epoch(s) {"1-2" if damage_kind == "deleted" else "1"}' in caplog.text
  assert os.path.getsize(tmp_path / 'curves.png') > 0


def test_a_damaged_latest_checkpoint_resumes_from_the_newest_that_restores(tmp_path, monkeypatch):
  # Epoch 1 counts as the best, so two checkpoints are kept: the best (1) and the latest (3).
  update = optim.EarlyStopping.update
  monkeypatch.setattr(optim.EarlyStopping, 'update',
                      lambda self, epoch, accuracy: update(self, epoch, float(epoch == 1)))
  config = tiny_config(num_epochs=3)
  loop.train_and_evaluate(config, str(tmp_path))
  from helpers import damage
  damage(tmp_path / 'checkpoints', 3)
  summary = loop.train_and_evaluate(config, str(tmp_path))
  assert summary['epochs'] == 3
  assert [r['epoch'] for r in records(tmp_path)] == [1, 2, 3]  # 2 and 3 trained again
  assert os.listdir(tmp_path / 'checkpoints.damaged')[0].startswith('3-')


def image_keys(images) -> set:
  return {np.ascontiguousarray(img).tobytes() for img in images}


@pytest.mark.parametrize('where', ['host', 'device'])
def test_no_test_image_ever_reaches_a_training_or_validation_batch(tmp_path, monkeypatch, where):
  """Every array that goes to the devices (host batches, resident sets, evaluation batches) is
  recorded; the test split's images are in none of them, while every validation image is."""
  seen = []
  def recording(fn):
    def wrapped(tree, mesh):
      seen.extend(np.asarray(x) for x in jax.tree.leaves(tree)
                  if np.ndim(x) >= 4 and np.asarray(x).dtype == np.uint8)
      return fn(tree, mesh)
    return wrapped
  monkeypatch.setattr(steps, 'shard_batch', recording(steps.shard_batch))
  monkeypatch.setattr(steps, 'replicate', recording(steps.replicate))
  config = tiny_config(num_epochs=2, data__test_fraction=0.25, data__where=where,
                       augment__where=where)
  summary = loop.train_and_evaluate(config, str(tmp_path))
  dataset = datasets.load_dataset(config, str(tmp_path), write=False)
  shape = dataset.test.images.shape[1:]
  sent = image_keys(img for batch in seen for img in batch.reshape(-1, *shape))
  assert summary['num_test'] == len(dataset.test) == 24
  assert image_keys(dataset.val.images) <= sent, 'validation batches were not recorded'
  assert len(image_keys(dataset.train.images) & sent) >= 32  # at least a batch of each epoch
  assert len(image_keys(dataset.test.images)) == 24
  assert not image_keys(dataset.test.images) & sent


def test_checkpoint_choice_is_the_same_with_and_without_a_test_split(tmp_path):
  """A run with a test split, and a run without one on exactly its training and validation
  images, train, choose and keep the same epoch and weights: the test split changes nothing."""
  config = dict(num_epochs=4, augment__preset='flip_bright', learning_rate=1e-2)
  with_test = str(tmp_path / 'with_test')
  a = loop.train_and_evaluate(tiny_config(data__test_fraction=0.25, **config), with_test)
  split = json.load(open(os.path.join(with_test, 'split.json')))
  os.makedirs(tmp_path / 'same_train_val')
  json.dump(dict(train=split['train'], val=split['val']),
            open(tmp_path / 'same_train_val' / 'split.json', 'w'))
  without = str(tmp_path / 'without_test')
  b = loop.train_and_evaluate(
      tiny_config(data__split_from=str(tmp_path / 'same_train_val'), **config), without)
  assert (a['num_test'], b['num_test']) == (24, 0)
  assert comparable_records(with_test) == comparable_records(without)
  assert a['best_epoch'] == b['best_epoch'] and a['best_val_accuracy'] == b['best_val_accuracy']
  states_ = []
  for workdir, c in ((with_test, tiny_config(**config)), (without, tiny_config(**config))):
    _, abstract = states.abstract_train_state(c, 4)
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
    states_.append(ckpt.restore_best(abstract)[0])
    ckpt.close()
  for x, y in zip(jax.tree.leaves(states_[0].params), jax.tree.leaves(states_[1].params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_summary_has_the_final_epoch_beside_the_best(learned_run):
  config, workdir, summary = learned_run
  rs = records(workdir)
  assert summary['final_epoch'] == 10 and summary['final_val_accuracy'] == rs[-1]['val_accuracy']
  assert summary['best_minus_final'] == pytest.approx(
      summary['best_val_accuracy'] - summary['final_val_accuracy'])
  assert summary['best_minus_final'] >= 0 and summary['num_test'] == 0
  again = loop.train_and_evaluate(config, workdir)  # a finished run reports the same figures
  assert again['final_val_accuracy'] == summary['final_val_accuracy']


def test_final_val_accuracy_of_a_run_resumed_from_an_older_checkpoint_comes_from_its_records(
    learned_run):
  import types
  from rockjax.training import history
  _, workdir, summary = learned_run
  ctx = types.SimpleNamespace(log=history.History(os.path.join(workdir, 'metrics.jsonl')))
  older = loop.Loop(plateau=None, stopper=None, epoch=10)
  assert loop.final_val_accuracy(ctx, older) == summary['final_val_accuracy']
  older.epoch = 11  # an epoch with no record: not known
  assert np.isnan(loop.final_val_accuracy(ctx, older))


def test_train_rate_leaves_out_the_dispatch_that_compiled():
  metrics = [dict(count=np.int32(10))] * 4  # 4 steps of 10 images
  assert history.train_rate(metrics, 5.0) == pytest.approx(8.0)  # 40 images in 5 s
  assert history.train_rate(metrics, 5.0, first_dispatch=(1, 4.0)) == pytest.approx(30.0)  # 30 in 1 s
  assert history.train_rate(metrics, 5.0, first_dispatch=(4, 4.999)) is None  # the whole epoch
  record = dict(epoch=1, train_loss=1.0, train_accuracy=0.5, val_loss=1.0, val_accuracy=0.5,
                best_val_accuracy=0.5, best_epoch=1, learning_rate=1e-3, images_per_s=None,
                epoch_seconds=61.0, elapsed_seconds=61.0, eta_seconds=0.0)
  assert 'img/s n/a (compiled)' in history.format_epoch(record, 1)
  assert '1234 img/s' in history.format_epoch(dict(record, images_per_s=1234.4), 1)
