"""scripts/label_noise_check.py: the noisy copy flips exactly what it says, and the whole check
(k-fold run, eval, scoring) runs end to end in its tiny form."""

import json
import os
import subprocess
import sys

import label_noise_check  # scripts/ (on sys.path: tests/conftest.py)
import pytest

from helpers import ROOT, write_image


def clean_folder(root, per_class=10):
  for name in ('a', 'b', 'c'):
    for i in range(per_class):
      write_image(os.path.join(str(root), name, f'{name}{i}.png'), seed=hash((name, i)) % 9999)
  return str(root)


def test_the_noisy_copy_flips_a_seeded_share_to_other_classes(tmp_path):
  source = clean_folder(tmp_path / 'clean')
  truth = label_noise_check.noisy_copy(source, str(tmp_path / 'noisy'), 0.2, 8, seed=3)
  assert len(truth) == 24  # 8 per class
  flipped = {p: t for p, t in truth.items() if t['true'] != t['given']}
  assert len(flipped) == 5  # round(0.2 * 24)
  for rel, t in truth.items():
    assert rel.split('/')[0] == t['given'] and os.path.exists(tmp_path / 'noisy' / rel)
    assert t['true'] not in os.path.basename(rel)  # the file name does not tell the class
  again = label_noise_check.noisy_copy(source, str(tmp_path / 'again'), 0.2, 8, seed=3)
  assert again == truth


def test_scores_against_the_flips():
  truth = {'a/1.png': dict(true='a', given='a'), 'b/2.png': dict(true='a', given='b'),
           'c/3.png': dict(true='b', given='c'), 'a/4.png': dict(true='a', given='a')}
  s = label_noise_check.score(['b/2.png', 'a/1.png', 'a/4.png'], truth)
  assert (s['num_flipped'], s['num_flagged']) == (2, 3)
  assert s['precision'] == pytest.approx(1 / 3) and s['recall'] == pytest.approx(0.5)
  assert s['precision_at_num_flipped'] == pytest.approx(0.5)


def test_the_check_runs_end_to_end(tmp_path):
  source = clean_folder(tmp_path / 'clean', per_class=12)
  out = tmp_path / 'result.json'
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_NUM_CPU_DEVICES='1')
  result = subprocess.run(
      [sys.executable, 'scripts/label_noise_check.py', '--config=tests/tiny_cli_config.py',
       '--config.data.kfold=2', '--config.num_epochs=1', '--config.batch_size=8',
       f'--source={source}', '--flip=0.25', f'--root={tmp_path / "run"}', f'--out={out}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  data = json.loads(out.read_text())
  assert data['num_photos'] == 36 and data['num_flipped'] == 9 and data['k'] == 2
  assert 0 <= data['precision'] <= 1 and 0 <= data['recall'] <= 1
  assert data['method'] == 'prune_by_noise_rate'
  assert set(data['by_method']) == {'prune_by_noise_rate', 'confident_joint', 'predicted_neq_given'}
  assert data['by_method']['prune_by_noise_rate']['num_flagged'] == data['num_flagged']
  assert os.path.exists(tmp_path / 'run' / 'run' / 'eval' / 'label_issues.csv')
