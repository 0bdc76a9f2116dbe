"""SIGKILL at chosen moments of a short run, then the same command: the resumed run's metrics.jsonl
and final weights equal those of a run never interrupted.

Each kill is the process killing itself (SIGKILL: no handler, no clean-up, like `kill -9` or a lost
machine) at a point named below, in a child process; the resume runs in this process."""

import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from rockjax.training import checkpointing, loop, state as states
from helpers import ROOT, comparable_records, tiny_config

EPOCHS = 3
CONFIG = dict(num_epochs=EPOCHS, augment__preset='flip', model__dropout=0.2)

CHILD = '''
import os, signal, sys
sys.path[:0] = [{root!r}, {tests!r}]
from helpers import tiny_config
from rockjax.training import checkpointing, history, loop
point, epoch, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
def after(owner, name, when):
  original = getattr(owner, name)
  def wrapped(*args, **kwargs):
    result = original(*args, **kwargs)
    if when(*args):
      die()
    return result
  setattr(owner, name, wrapped)
if point == 'steps':  # the epoch's training steps done, before its validation and save
  after(loop, 'check_finite', lambda ctx, lp, metrics, e: e == epoch)
elif point == 'save':  # the epoch's checkpoint being written (Orbax writes it in the background)
  after(checkpointing.Checkpointer, 'save', lambda self, e, *rest: e == epoch)
elif point == 'record':  # the epoch's line of metrics.jsonl written, the next epoch not begun
  after(history.History, 'append', lambda self, record: record['epoch'] == epoch)
loop.train_and_evaluate(tiny_config(**{config!r}), workdir)
'''

# (where, epoch): each stage of an epoch's end, mid-run (a kill before the first checkpoint simply
# starts over).
KILLS = [('steps', 2), ('save', 2), ('record', 2)]


def final_params(workdir):
  config = tiny_config(**CONFIG)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
  try:
    _, target = states.abstract_train_state(config, 4)
    state, _ = ckpt.restore(ckpt.latest_epoch(), target)
  finally:
    ckpt.close()
  return jax.device_get(state.params)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('uninterrupted'))
  loop.train_and_evaluate(tiny_config(**CONFIG), workdir)
  return comparable_records(workdir), final_params(workdir)


@pytest.mark.parametrize('point, epoch', KILLS)
def test_a_kill_at_any_point_then_rerun_equals_an_uninterrupted_run(tmp_path, uninterrupted,
                                                                     point, epoch):
  workdir = str(tmp_path / 'run')
  script = CHILD.format(root=ROOT, tests=os.path.join(ROOT, 'tests'), config=CONFIG)
  child = subprocess.run([sys.executable, '-c', script, point, str(epoch), workdir], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
  assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]  # it died where it was told
  summary = loop.train_and_evaluate(tiny_config(**CONFIG), workdir)
  assert summary['epochs'] == EPOCHS
  records, params = uninterrupted
  assert comparable_records(workdir) == records
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(final_params(workdir))):
    np.testing.assert_array_equal(a, b)
