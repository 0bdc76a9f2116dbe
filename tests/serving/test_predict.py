"""--mode=predict: a row per readable file, bad files skipped, globs and folders, no matches."""

import csv
import os

import numpy as np
import pytest

from rockjax.serving import predict, predictor as inference
from helpers import write_image


def test_predict_skips_the_corrupt_file_and_writes_a_row_per_good_file(run, tmp_path):
  config, workdir, _ = run
  inputs = tmp_path / 'new'
  good = [write_image(str(inputs / f'rock{i}.jpg'), fmt='JPEG', seed=i) for i in range(3)]
  good.append(write_image(str(inputs / 'sub' / 'gray.png'), mode='L', seed=9))
  (inputs / 'broken.jpg').write_bytes(b'\xff\xd8\xff garbage')
  summary = predict.predict_workdir(workdir, [str(inputs)], config.predict)
  assert (summary['num_predicted'], summary['num_skipped']) == (4, 1)
  assert summary['skipped'][0]['path'].endswith('broken.jpg')
  assert summary['batch1_p50_ms'] > 0 and summary['batch1_p99_ms'] >= summary['batch1_p50_ms']
  with open(os.path.join(workdir, 'predictions.csv')) as f:
    rows = list(csv.DictReader(f))
  assert sorted(r['file'] for r in rows) == sorted(os.path.abspath(p) for p in good)
  class_names = inference.load_class_names(workdir)
  for r in rows:
    p = np.array([float(r[f'p_{c}']) for c in class_names])
    assert p.sum() == pytest.approx(1.0, abs=1e-4)
    assert r['predicted_class'] == class_names[int(p.argmax())]


def test_predict_accepts_globs_and_files(run, tmp_path):
  config, workdir, _ = run
  a = write_image(str(tmp_path / 'a.png'))
  write_image(str(tmp_path / 'b.png'), seed=1)
  paths = predict.expand_inputs([str(tmp_path / '*.png'), a], ('.png',))
  assert paths == sorted({os.path.abspath(a), str(tmp_path / 'b.png')})


def test_inputs_that_match_nothing_are_an_error(run, tmp_path):
  config, workdir, _ = run
  with pytest.raises(predict.NoInputsError, match='matched no image'):
    predict.predict_workdir(workdir, [str(tmp_path / 'nothing*.jpg')], config.predict)


def test_predict_that_cannot_write_its_csv_says_so_and_can_write_elsewhere(run, tmp_path):
  import shutil
  import ml_collections
  from rockjax import errors
  config, workdir, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  if (copy / 'predictions.csv').exists():  # from an earlier test on the shared run
    (copy / 'predictions.csv').unlink()
  (copy / 'predictions.csv').mkdir()  # the CSV cannot be written there
  image = write_image(str(tmp_path / 'in' / 'rock.png'))
  predict_config = ml_collections.ConfigDict(dict(config.predict.to_dict(), latency_runs=0))
  with pytest.raises(errors.WorkdirError, match='predictions.csv.*predict.output_dir'):
    predict.predict_workdir(str(copy), [image], predict_config)
  predict_config.output_dir = str(tmp_path / 'out')
  summary = predict.predict_workdir(str(copy), [image], predict_config)
  assert summary['predictions'] == str(tmp_path / 'out' / 'predictions.csv')
  assert os.path.exists(summary['predictions'])


def test_a_list_file_names_inputs_with_commas(tmp_path):
  odd = write_image(str(tmp_path / 'granite, sample 1.png'))
  plain = write_image(str(tmp_path / 'b.png'), seed=1)
  listing = tmp_path / 'inputs.txt'
  listing.write_text(f'{odd}\n\n{plain}\n')
  assert predict.expand_inputs([f'@{listing}'], ('.png',)) == sorted([odd, plain])
  with pytest.raises(predict.DataError, match='cannot read the list file'):
    predict.expand_inputs([f'@{tmp_path / "missing.txt"}'], ('.png',))


def test_every_input_that_is_not_predicted_is_accounted_for(run, tmp_path):
  """`good.png,typo.png,nomatch*.png` used to predict 1 image, report 'skipped 0' and exit 0."""
  import ml_collections
  config, workdir, _ = run
  good = write_image(str(tmp_path / 'good.png'))
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'notes.png').write_text('not an image')
  listing = tmp_path / 'list.txt'
  listing.write_text(f'{good}\n{tmp_path / "gone.png"}\n')
  inputs = [good, str(tmp_path / 'typo.png'), str(tmp_path / 'nomatch*.png'),
            str(tmp_path / 'empty'), str(tmp_path / 'notes.png'), f'@{listing}']
  predict_config = ml_collections.ConfigDict(dict(config.predict.to_dict(), latency_runs=0,
                                                  output_dir=str(tmp_path / 'out')))
  with pytest.raises(predict.MissingInputsError) as caught:
    predict.predict_workdir(workdir, inputs, predict_config)
  message = str(caught.value)
  assert '2 not found: ' in message and 'typo.png' in message and 'gone.png' in message
  assert '2 matched nothing: ' in message and 'nomatch*.png' in message
  assert 'predict.allow_missing' in message and '\n' not in message
  with open(tmp_path / 'out' / 'predictions.csv') as f:  # the readable one is still predicted
    assert [r['file'] for r in csv.DictReader(f)] == [good]
  predict_config.allow_missing = True
  summary = predict.predict_workdir(workdir, inputs, predict_config)
  assert summary['num_predicted'] == 1 and summary['num_skipped'] == 5
  assert summary['skipped_by_reason'] == {'not_found': 2, 'matched_nothing': 2, 'not_an_image': 1}
  assert {s['path'] for s in summary['skipped'] if s['reason'] == 'not_found'} == {
      str(tmp_path / 'typo.png'), str(tmp_path / 'gone.png')}


def test_cli_predict_with_a_missing_input_exits_non_zero(run, tmp_path):
  from helpers import run_main
  _, workdir, _ = run
  good = write_image(str(tmp_path / 'good.png'))
  result = run_main('--config=configs/residual.py', '--mode=predict', f'--workdir={workdir}',
                    f'--inputs={good},{tmp_path / "typo.png"}', '--config.predict.latency_runs=0',
                    f'--config.predict.output_dir={tmp_path}')
  assert result.returncode == 2, result.stderr[-2000:]
  assert 'error: 1 prediction(s) written' in result.stderr and 'typo.png' in result.stderr
