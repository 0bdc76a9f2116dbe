"""The workdir: one writer at a time (a dead holder never blocks), one config per run, and a first
run that failed before finishing an epoch does not lock its workdir to the wrong config."""

import json
import os
import signal
import subprocess
import sys

import pytest

from rockjax import errors
from rockjax.training import loop, workdir as workdirs
from helpers import ROOT, tiny_config


def test_a_held_lock_refuses_a_second_writer_and_names_the_holder(tmp_path):
  holder = workdirs.WorkdirLock(str(tmp_path))
  holder.acquire()
  try:
    with pytest.raises(errors.WorkdirError, match=rf'in use by another training run \(pid '
                                                  rf'{os.getpid()} on host'):
      loop.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ['.lock']  # nothing else was written
  finally:
    holder.release()
  loop.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))  # released: trains


def test_the_lock_of_a_killed_process_is_gone(tmp_path):
  code = ('import sys, time\nfrom rockjax.training.workdir import WorkdirLock\n'
          f'WorkdirLock({str(tmp_path)!r}).acquire()\nprint("locked", flush=True)\ntime.sleep(120)')
  proc = subprocess.Popen([sys.executable, '-c', code], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True, env=dict(os.environ, PYTHONPATH=ROOT))
  try:
    assert proc.stdout.readline().strip() == 'locked'
    with pytest.raises(errors.WorkdirError, match=f'pid {proc.pid} on host'):
      workdirs.WorkdirLock(str(tmp_path)).acquire()
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  lock = workdirs.WorkdirLock(str(tmp_path))
  lock.acquire()  # kill -9 released it
  lock.release()


def test_a_first_run_that_failed_accepts_the_corrected_config(tmp_path):
  with pytest.raises(errors.ConfigError, match='config.batch_size: 512 exceeds'):
    loop.train_and_evaluate(tiny_config(batch_size=512), str(tmp_path))
  assert os.path.exists(tmp_path / 'config.json') and os.path.exists(tmp_path / 'split.json')
  summary = loop.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))
  assert summary['epochs'] == 1
  assert json.load(open(tmp_path / 'config.json'))['batch_size'] == 32
  # Once an epoch is finished, the config is fixed.
  with pytest.raises(errors.WorkdirError, match=r'changed: \[.batch_size.\]'):
    loop.train_and_evaluate(tiny_config(num_epochs=1, batch_size=16), str(tmp_path))


def test_a_damaged_config_json_is_named_once_epochs_exist(tmp_path):
  loop.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))
  (tmp_path / 'config.json').write_text('{"num_epochs": 1, "model": ')
  with pytest.raises(errors.WorkdirError, match='config.json.*is damaged'):
    loop.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))
  fresh = tmp_path / 'fresh'
  fresh.mkdir()
  (fresh / 'config.json').write_text('not json')  # no finished epoch: simply replaced
  assert loop.train_and_evaluate(tiny_config(num_epochs=1), str(fresh))['epochs'] == 1


def test_training_holder_tells_a_live_trainer_from_a_stale_lock(tmp_path):
  import socket
  import subprocess
  host = socket.gethostname()
  assert workdirs.training_holder(str(tmp_path)) is None  # no lock file
  trainer = subprocess.Popen(['sleep', '60'])
  try:
    line = f'pid {trainer.pid} on host {host}, since 2026-12-05 10:00:00'
    (tmp_path / '.lock').write_text(line)
    assert workdirs.training_holder(str(tmp_path)) == line
  finally:
    trainer.kill()
    trainer.wait()
  assert workdirs.training_holder(str(tmp_path)) is None  # the holder is gone: a stale line
  (tmp_path / '.lock').write_text('pid 1 on host another-host, since 2026-12-05 10:00:00')
  assert workdirs.training_holder(str(tmp_path)) is None  # not locked
  lock = workdirs.WorkdirLock(str(tmp_path))
  lock.acquire()  # this process holds it: not "another" trainer
  try:
    assert workdirs.training_holder(str(tmp_path)) is None
  finally:
    lock.release()
