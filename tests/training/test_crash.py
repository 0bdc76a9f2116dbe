"""Crash safety with real processes: a second writer is refused while a run trains; kill -9 in the
middle of training, rerun (the dead process's lock does not block it), finish intact."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from rockjax import errors
from rockjax.serving import predictor as inference
from rockjax.training import loop
from helpers import ROOT, tiny_config

# Enough epochs that the run is still training when the test acts on it (a tiny epoch takes a
# fraction of a second on a fast machine); early stopping off, so every run has all of them.
EPOCHS = 12


def command(workdir):
  return [sys.executable, os.path.join(ROOT, 'main.py'),
          f'--config={os.path.join(ROOT, "tests", "tiny_cli_config.py")}',
          f'--config.num_epochs={EPOCHS}', '--config.early_stopping_patience=0',
          '--config.augment.preset=flip', f'--workdir={workdir}']


def metric_lines(workdir):
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    return sum(1 for line in f if line.strip())


def test_kill_9_mid_training_then_rerun_finishes_with_every_epoch_once(tmp_path):
  workdir = str(tmp_path / 'run')
  env = dict(os.environ, PYTHONPATH=ROOT)
  # A random moment after epoch 2..4 is recorded. By then epoch 1's checkpoint is on disk (the save
  # of epoch e waits for that of e - 1), so the rerun must resume. A kill right after epoch 1 may
  # land before its asynchronous save finishes, and starting over is then correct.
  kill_after = random.Random().randint(2, 4)
  proc = subprocess.Popen(command(workdir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while metric_lines(workdir) < kill_after and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  # A second writer while the first trains is refused at once, naming the holder; it writes nothing.
  with pytest.raises(errors.WorkdirError,
                     match=rf'in use by another training run \(pid {proc.pid} on host'):
    loop.train_and_evaluate(tiny_config(num_epochs=EPOCHS, augment__preset='flip'), workdir)
  time.sleep(random.Random().uniform(0, 0.5))  # somewhere inside the next epoch or its save
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done_before = metric_lines(workdir)
  assert 1 <= done_before < EPOCHS, 'the kill should land mid-run'

  result = subprocess.run(command(workdir), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  resumed = [line for line in result.stderr.splitlines() if 'Resumed from the checkpoint' in line]
  assert resumed, 'the rerun must resume, not start over'
  resumed_epoch = int(resumed[0].split('epoch ')[1].split(' ')[0])
  assert resumed_epoch >= done_before - 1  # at most one epoch lost
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    epochs = [json.loads(line)['epoch'] for line in f]
  assert epochs == list(range(1, EPOCHS + 1))
  summary = json.load(open(os.path.join(workdir, 'summary.json')))
  assert summary['epochs'] == EPOCHS
  predictor = inference.load_predictor(workdir)  # the best checkpoint is intact and loadable
  assert predictor.epoch == summary['best_epoch']



def wait_for_epochs(proc, workdir, n, seconds=240):
  deadline = time.time() + seconds
  while metric_lines(workdir) < n and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  assert proc.poll() is None, 'the run ended before it could be interrupted'


@pytest.mark.parametrize('sig, status, said', [(signal.SIGINT, 130, 'interrupted'),
                                                (signal.SIGTERM, 143, 'terminated (SIGTERM)')])
def test_ctrl_c_and_sigterm_are_one_line_and_keep_every_saved_epoch(tmp_path, sig, status, said):
  """Ctrl-C used to print a 50-line KeyboardInterrupt traceback; SIGTERM killed without a word."""
  from rockjax.training import faults
  env = dict(os.environ, PYTHONPATH=ROOT)
  workdir = str(tmp_path / 'run')
  # 40 epochs, none ended by early stopping: the run is still training when the signal is sent.
  # Sent once: a signal whose exception a callback swallowed (JAX's garbage-collection callback
  # did) is raised again at the next step (faults.raise_pending_signal), so it must not be lost.
  epochs = ['--config.num_epochs=40', '--config.early_stopping_patience=0']
  proc = subprocess.Popen(command(workdir) + epochs, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  wait_for_epochs(proc, workdir, 2)
  proc.send_signal(sig)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == status, stderr[-2000:]
  assert 'Traceback' not in stderr, stderr[-3000:]
  last = stderr.strip().splitlines()[-1]
  saved = faults.saved_epochs(workdir)
  assert saved and last.startswith(f'error: {said} during epoch ')
  assert f'the checkpoint of epoch {saved[-1]} is kept; rerun the same command to resume' in last
  if sig == signal.SIGTERM:
    return  # the same unwinding as Ctrl-C's, whose rerun is checked
  # The rerun resumes and goes on (test_kill_9_... runs a resumed run to its end): two epochs past
  # the checkpoint, then Ctrl-C again, rather than 40 epochs of waiting.
  proc = subprocess.Popen(command(workdir) + epochs, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  wait_for_epochs(proc, workdir, saved[-1] + 2)
  proc.send_signal(sig)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == status, stderr[-2000:]
  assert f'Resumed from the checkpoint of epoch {saved[-1]}' in stderr
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    done = [json.loads(line)['epoch'] for line in f]  # every epoch once
  assert done == list(range(1, len(done) + 1)) and len(done) >= saved[-1] + 2
