"""scripts/device_check.py, the one-command GPU check, runs end to end in its CPU-size form, so it
cannot rot between the sessions that have a GPU."""

import json
import os
import subprocess
import sys

from helpers import ROOT


def test_device_check_quick_writes_every_part(tmp_path):
  out = tmp_path / 'check.json'
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_NUM_CPU_DEVICES='1')
  result = subprocess.run([sys.executable, 'scripts/device_check.py', '--quick', f'--out={out}',
                           '--decoded=missing.npz', '--budget=1200'], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  data = json.loads(out.read_text())
  parts = data['parts']
  assert data['skipped'] == []
  assert not [name for name, part in parts.items() if 'error' in part], parts
  assert parts['machine']['backend'] == 'cpu' and parts['machine']['versions']['jax']
  study = parts['kfold_study']
  assert len(study['fold_accuracies']) == 2 and study['wall_seconds'] > 0
  row = parts['train rocks bfloat16 batch 8']
  assert set(row['images_per_s']) >= {'step_k1', 'end_to_end_k1'}
  assert all(rate > 0 for rate in row['images_per_s'].values())
  assert row['flops_per_step'] > 0 and row['compile_seconds']['step_k1'] > 0
  if 'pytorch' in row['images_per_s']:  # PyTorch installed: the same network, parameter for param
    assert row['pytorch_num_params'] == row['num_params']
  efficientnet = parts['train pretrained float32 batch 8']
  assert efficientnet['images_per_s']['step_k1'] > 0 and efficientnet['flops_per_step'] > 0
  assert parts['predict']['rocks']['batch1_p50_ms'] > 0
