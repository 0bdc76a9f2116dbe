"""scripts/export_check.py: a run's validation photos, read as files by the exported SavedModel and
by rockjax.load, agree on every top-1 (the rock7 result is in results/export_check_*.json)."""

import export_check  # scripts/ (on sys.path: tests/conftest.py)


def test_the_check_runs_and_agrees_on_a_finished_run(run, tmp_path):
  _, workdir, _ = run
  result = export_check.check(workdir, str(tmp_path / 'export'), batch_size=7)
  assert result['photos'] > 7 and result['top1_agree'] == result['photos']
  assert result['disagreeing'] == [] and result['max_abs_probability_difference'] < 1e-4
