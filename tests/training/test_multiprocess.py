"""A real multi-process run (jax.distributed, two processes x 2 CPU devices, Gloo over loopback):
it trains exactly like one process with four devices, only process 0 writes the workdir, its
checkpoint restores in a single process, and kill -9 of one process ends the other in bounded
time with JAX's message instead of a hang."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rockjax.serving import predictor as predictors
from rockjax.training import loop
from helpers import ROOT, tiny_config

TIMEOUT = 5  # config.distributed_timeout_seconds for these runs


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def launch(workdir: str, num_epochs: int, port: int) -> list[subprocess.Popen]:
  procs = []
  for process_id in range(2):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_NUM_CPU_DEVICES='2',
               JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}', JAX_NUM_PROCESSES='2',
               JAX_PROCESS_ID=str(process_id))
    procs.append(subprocess.Popen(
        [sys.executable, 'main.py', '--config=tests/tiny_cli_config.py',
         f'--config.num_epochs={num_epochs}', '--config.num_devices=0',
         f'--config.distributed_timeout_seconds={TIMEOUT}', f'--workdir={workdir}'],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
  return procs


def records(workdir):
  if not os.path.exists(os.path.join(workdir, 'metrics.jsonl')):
    return []
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def test_two_processes_train_like_one_and_a_dead_one_stops_the_other(tmp_path):
  """One launch (it took two, about 80 s): the first epochs are compared with one process, then
  process 1 is killed mid-run. The schedule is constant, so epochs 1-2 of this long run are those
  of a 2-epoch run."""
  workdir = str(tmp_path / 'two')
  procs = launch(workdir, 200, free_port())
  deadline = time.time() + 240
  while len(records(workdir)) < 3 and time.time() < deadline and procs[0].poll() is None:
    time.sleep(0.1)
  assert len(records(workdir)) >= 3, procs[0].stderr.read()[-2000:]
  procs[1].send_signal(signal.SIGKILL)
  killed = time.time()
  _, err = procs[0].communicate(timeout=TIMEOUT + 60)
  procs[1].wait()
  assert procs[0].returncode != 0
  assert time.time() - killed < TIMEOUT + 45
  assert 'another task died' in err or 'heartbeat timeout' in err, err[-2000:]

  # The same global batches on the same (global) devices as one process with 4 devices.
  loop.train_and_evaluate(tiny_config(num_epochs=2, num_devices=4), str(tmp_path / 'one'))
  two, one = records(workdir), records(tmp_path / 'one')
  assert [r['epoch'] for r in two] == list(range(1, len(two) + 1))  # written once, by process 0
  for a, b in zip(two[:2], one):
    for key in ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'best_epoch'):
      assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
  with open(os.path.join(workdir, 'environment.json')) as f:
    assert len(json.load(f)) == 1  # one session entry: process 1 wrote nothing
  # Its best checkpoint restores in a single process (one recorded epoch's best, or the epoch
  # whose save had begun when process 1 died).
  assert predictors.load_predictor(workdir).epoch in {r['best_epoch'] for r in two} | {len(two) + 1}
