"""scripts/ablation_report.py: the study table and curves come from the runs' own files."""

import json
import os
import shutil

import ablation_report  # scripts/ (on sys.path: tests/conftest.py)
import pytest


def fake_kfold_run(root, bests, val_sets, num_epochs=3, finished_folds=None, finals=None,
                   cpu='AMD EPYC'):
  """A k-fold run directory as crossval writes it: fold_*/config.json, metrics.jsonl, split.json.
  Val accuracy rises to `bests` at the last epoch, or peaks there one epoch early and ends at
  `finals`."""
  k = len(bests)
  for f, (best, val) in enumerate(zip(bests, val_sets)):
    d = os.path.join(root, f'fold_{f}')
    os.makedirs(d)
    config = dict(num_epochs=num_epochs, early_stopping_patience=0, data=dict(kfold=k))
    json.dump(config, open(os.path.join(d, 'config.json'), 'w'))
    json.dump([dict(time='2026-12-06T22:13:07+0000', processor=cpu, cpu_count=2)],
              open(os.path.join(d, 'environment.json'), 'w'))
    json.dump(dict(val=val, train=[], duplicate_groups=7),
              open(os.path.join(d, 'split.json'), 'w'))
    epochs = num_epochs if finished_folds is None or f in finished_folds else 1
    with open(os.path.join(d, 'metrics.jsonl'), 'w') as out:
      for e in range(1, epochs + 1):
        peak = num_epochs - (finals is not None)
        val = best * min(e, peak) / peak if e <= peak else finals[f]
        out.write(json.dumps(dict(epoch=e, val_accuracy=val, best_val_accuracy=
                                  best * min(e, peak) / peak, best_epoch=min(e, peak),
                                  train_accuracy=0.5 + e / 100, elapsed_seconds=60.0 * e)) + '\n')
  return root


def test_table_has_mean_std_and_tells_fold_sets_apart(tmp_path):
  folds_a = [['a/1.jpg'], ['a/2.jpg'], ['b/3.jpg']]
  folds_b = [['a/2.jpg'], ['a/1.jpg'], ['b/3.jpg']]
  one = fake_kfold_run(str(tmp_path / 'one'), [0.5, 0.6, 0.7], folds_a,
                       finals=[0.48, 0.6, 0.66])
  two = fake_kfold_run(str(tmp_path / 'two'), [0.4, 0.4, 0.4], folds_a)
  other = fake_kfold_run(str(tmp_path / 'other'), [0.4, 0.5, 0.6], folds_b,
                         cpu='Intel(R) Xeon(R) Processor')
  part = fake_kfold_run(str(tmp_path / 'part'), [0.9, 0.9, 0.9], folds_a, finished_folds={0})
  out = str(tmp_path / 'report' / 'study')
  assert ablation_report.main([f'one={one}', f'two={two}', f'other={other}', f'part={part}',
                               f'--out={out}']) == 0
  rows = {r.split('|')[1].strip(): [c.strip() for c in r.split('|')[1:-1]]
          for r in open(f'{out}_table.md').read().splitlines()[2:]}
  # The final epoch's figures lead; the best epoch's (selected on validation) stand beside them.
  assert rows['one'][1] == '48.00, 60.00, 66.00'
  assert rows['one'][2] == '**58.00 +- 9.17**'  # sample standard deviation
  assert rows['one'][3] == '60.00 +- 10.00' and rows['one'][4] == '+2.00'
  assert rows['two'][2] == '**40.00 +- 0.00**' and rows['two'][4] == '+0.00'
  assert rows['one'][5] == '53-53' and rows['one'][7] == '3.0 min' and rows['one'][8] == '7'
  assert rows['one'][9] == rows['two'][9] != rows['other'][9]  # same folds, same fingerprint
  assert rows['part'][2] == '1 of 3 folds done' and rows['part'][9] == '-'
  # Where each row trained (XLA:CPU compiles for the CPU model: rows from one model repeat).
  assert rows['one'][10] == 'AMD EPYC' and rows['other'][10] == 'Intel(R) Xeon(R) Processor'
  with open(f'{out}_curves.png', 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_each_panel_is_titled_with_the_tables_final_epoch_mean(tmp_path, monkeypatch):
  """With early stopping the mean curve ends at the last epoch every fold reached; the panel
  still states the folds' own final-epoch mean, the table's figure."""
  val_sets = [['a/1.jpg'], ['a/2.jpg'], ['b/3.jpg']]
  one = fake_kfold_run(str(tmp_path / 'one'), [0.5, 0.6, 0.7], val_sets, finals=[0.48, 0.6, 0.66])
  for f in (1, 2):  # these two folds ran two epochs longer than fold 0, and fell to 30%
    with open(os.path.join(one, f'fold_{f}', 'metrics.jsonl'), 'a') as out:
      for e in (4, 5):
        out.write(json.dumps(dict(epoch=e, val_accuracy=0.3, best_val_accuracy=0.7, best_epoch=2,
                                  train_accuracy=0.6, elapsed_seconds=60.0 * e)) + '\n')
  part = fake_kfold_run(str(tmp_path / 'part'), [0.9, 0.9, 0.9], val_sets, finished_folds={0})
  drawn = {}
  monkeypatch.setattr(ablation_report.plots, 'curves_grid',
                      lambda curves, path, **kw: drawn.update(curves=curves, **kw))
  assert ablation_report.main([f'one={one}', f'part={part}', f'--out={tmp_path}/r']) == 0
  assert drawn['notes'] == {'one': 'final epoch 36.0 +- 10.4', 'part': '1 of 3 folds done'}
  end_epoch, end_value = drawn['curves']['one'][-1]  # where the curve ends: 58%, not the figure
  assert end_epoch == 3 and end_value == pytest.approx(58.0)


def test_bad_arguments_are_refused(tmp_path):
  with pytest.raises(SystemExit):
    ablation_report.main(['no-equals-sign', f'--out={tmp_path}/x'])
  with pytest.raises(SystemExit):
    ablation_report.main([f'x={tmp_path}/missing', f'--out={tmp_path}/x'])
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match='no fold_'):
    ablation_report.main([f'x={empty}', f'--out={tmp_path}/x'])


def _table(out):
  return {r.split('|')[1].strip(): [c.strip() for c in r.split('|')[1:-1]]
          for r in open(f'{out}_table.md').read().splitlines()[2:]}


def test_a_record_keeps_finished_rows_whose_run_directories_are_gone(tmp_path, monkeypatch):
  """A study over several sessions: the rows finished in the first are reported, figures and
  curves alike, after their run directories are deleted; unfinished rows are not kept."""
  val_sets = [['a/1.jpg'], ['a/2.jpg'], ['b/3.jpg']]
  one = fake_kfold_run(str(tmp_path / 'one'), [0.5, 0.6, 0.7], val_sets, finals=[0.48, 0.6, 0.66])
  part = fake_kfold_run(str(tmp_path / 'part'), [0.9, 0.9, 0.9], val_sets, finished_folds={0})
  record, out = str(tmp_path / 'kept' / 'rows.json'), str(tmp_path / 'r')
  args = [f'one={one}', f'part={part}', f'later={tmp_path}/later', f'--out={out}',
          f'--record={record}']
  drawn = []
  monkeypatch.setattr(ablation_report.plots, 'curves_grid',
                      lambda curves, path, **kw: drawn.append((curves, kw['notes'])))
  assert ablation_report.main(args) == 0
  first = _table(out)
  assert first['one'][2] == '**58.00 +- 9.17**' and first['part'][2] == '1 of 3 folds done'
  assert first['later'][2] == 'not run yet' and first['later'][1] == '-'
  assert first['one'][10] == 'AMD EPYC' and first['later'][10] == '-'
  kept = json.load(open(record))['rows']
  assert list(kept) == ['one']  # only the finished row is kept, with where it ran
  assert kept['one']['machines'] == ['2026-12-06: AMD EPYC, 2 cores']
  for d in (one, part):
    for f in os.listdir(d):
      shutil.rmtree(os.path.join(d, f))
  assert ablation_report.main(args) == 0
  again = _table(out)
  assert again['one'] == first['one']  # every column, the folds' fingerprint included
  assert again['part'][2] == 'not run yet'
  (curves, notes), (curves_again, notes_again) = drawn
  assert [e for e, _ in curves_again['one']] == [e for e, _ in curves['one']] == [1, 2, 3]
  assert [v for _, v in curves_again['one']] == pytest.approx([v for _, v in curves['one']])
  assert notes_again['one'] == notes['one'] == 'final epoch 58.0 +- 9.2'
  assert curves_again['part'] == [] and notes_again['part'] == 'not run yet'


def test_a_rerun_that_ends_differently_replaces_the_record_and_says_so(tmp_path, capsys):
  val_sets = [['a/1.jpg'], ['a/2.jpg']]
  run = fake_kfold_run(str(tmp_path / 'run'), [0.5, 0.6], val_sets)
  record = str(tmp_path / 'rows.json')
  args = [f'row={run}', f'--out={tmp_path}/r', f'--record={record}']
  assert ablation_report.main(args) == 0
  assert ablation_report.main(args) == 0
  assert 'the record kept' not in capsys.readouterr().err  # the same run: nothing to say
  shutil.rmtree(run)
  fake_kfold_run(run, [0.5, 0.7], val_sets, cpu='Intel Xeon')
  assert ablation_report.main(args) == 0
  assert ('ends at [50.0, 70.0] (2026-12-06: Intel Xeon, 2 cores), the record kept [50.0, 60.0] '
          '(2026-12-06: AMD EPYC, 2 cores)') in capsys.readouterr().err
  assert _table(f'{tmp_path}/r')['row'][1] == '50.00, 70.00'
  kept = json.load(open(record))['rows']['row']
  assert [f["final"] for f in kept["folds"]] == pytest.approx([0.5, 0.7])


def test_with_a_record_a_study_with_nothing_finished_still_writes_its_table(tmp_path):
  out = str(tmp_path / 'r')
  assert ablation_report.main([f'a={tmp_path}/a', f'--out={out}',
                               f'--record={tmp_path}/rows.json']) == 0
  assert _table(out)['a'][2] == 'not run yet'
  assert not os.path.exists(f'{out}_curves.png')  # nothing to draw
