"""scripts/benchmark_dedup.py: both searches timed on the same hashes, agreeing, with planted
near-copies found, from a photo folder and from random hashes."""

import json
import os
import subprocess
import sys

import numpy as np

import benchmark_dedup  # scripts/ (on sys.path: tests/conftest.py)
from helpers import ROOT, write_image


def test_synthetic_hashes_plant_near_copies_within_the_threshold():
  words = benchmark_dedup.synthetic_hashes(1000, threshold=3, seed=0)
  assert words.dtype == np.uint64 and len(np.unique(words)) > 950
  distances = np.bitwise_count(words[1:] ^ words[:-1])
  assert (distances <= 3).sum() >= 1000 // 50 - 1  # planted pairs (a few may overlap)


def test_the_script_writes_agreeing_timings_for_photos_and_random_hashes(tmp_path):
  for name in ('basalt', 'granite'):
    for i in range(6):
      write_image(str(tmp_path / 'photos' / name / f'{i}.png'), seed=i + 10 * len(name))
  out = tmp_path / 'dedup.json'
  result = subprocess.run(
      [sys.executable, 'scripts/benchmark_dedup.py', f'--photos={tmp_path / "photos"}',
       '--synthetic=3000', '--rounds=1', '--chunk=64', f'--out={out}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, PYTHONPATH=ROOT))
  assert result.returncode == 0, result.stderr[-3000:]
  rows = json.loads(out.read_text())['rows']
  assert [r['images'] for r in rows] == [12, 3000]
  for row in rows:
    assert row['same_pairs'] and set(row['seconds']) == {'index', 'all_pairs'}
  assert rows[1]['pairs'] >= 3000 // 50 - 1 and rows[1]['fullest_bucket'] >= 1
