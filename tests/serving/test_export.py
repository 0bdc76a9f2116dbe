"""--mode=export: the SavedModel takes files or images of any size and gives what --mode=predict
gives, at any batch size."""

import json
import os
import shutil
import socket
import subprocess

import numpy as np
import pytest

from rockjax.serving import export, predict, predictor as inference

tf = pytest.importorskip('tensorflow')


def test_export_round_trip_matches_jax(run, tmp_path):
  """Exported from a copy of the run that is still training (its lock held by a live process):
  model.json says so, and which checkpoint it holds."""
  _, workdir, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  trainer = subprocess.Popen(['sleep', '120'])
  try:
    (copy / '.lock').write_text(f'pid {trainer.pid} on host {socket.gethostname()}, since now')
    out = export.export_saved_model(str(copy), str(tmp_path / 'export'))
  finally:
    trainer.kill()
  serve, meta = export.load_saved_model(out)
  predictor = inference.load_predictor(workdir, calibrated=True)  # what predict serves
  assert meta['class_names'] == predictor.class_names and meta['image_size'] == 16
  assert meta['training_still_running'] is True
  assert meta['checkpoint'] == 'the best checkpoint' and meta['checkpoint_epoch'] == predictor.epoch
  images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  expected = predictor.probabilities(images)
  for batch in (images, images[:1]):  # any batch size
    got = serve(batch)
    np.testing.assert_allclose(got, expected[:len(batch)], atol=1e-5)


@pytest.mark.parametrize('interpolation,aspect', [('nearest', 'stretch'),
                                                  ('area', 'center_crop')])
def test_files_of_any_size_and_format_score_as_predict_scores_them(run, tmp_path, interpolation,
                                                                   aspect):
  """Mixed formats, sizes, transparency and EXIF rotation, through the `files` signature and,
  decoded, through `serving_default`: --mode=predict's probabilities within 1e-3, its top-1."""
  from test_tf_images import _files
  _, workdir, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  config = json.loads((copy / 'config.json').read_text())
  config['data'].update(interpolation=interpolation, aspect=aspect)  # the same weights
  (copy / 'config.json').write_text(json.dumps(config))
  out = export.export_saved_model(str(copy), str(tmp_path / 'export'))
  predictor = inference.load_predictor(str(copy), calibrated=True)  # what predict serves
  paths = _files(str(tmp_path / 'photos'))
  pixels, good, _ = predict.read_inputs(paths, predictor.read_options)
  assert good == paths
  expected = predictor.probabilities(pixels)

  got = export.load_file_signature(out)(paths)
  np.testing.assert_allclose(got['probabilities'], expected, atol=1e-3)
  np.testing.assert_array_equal(got['class_index'], expected.argmax(1))
  names = [n.decode() for n in got['class_name']]
  assert names == [predictor.class_names[i] for i in expected.argmax(1)]
  assert [n.decode() for n in got['class_names']] == predictor.class_names

  from rockjax.data import imageio
  serve = tf.saved_model.load(os.path.join(out, 'saved_model')).signatures['serving_default']
  photo = np.asarray(imageio.open_rgb(paths[0], 255, draft_size=32))  # any size, decoded
  single = serve(images=tf.constant(photo[None]))['probabilities'].numpy()
  np.testing.assert_allclose(single[0], expected[0], atol=1e-3)


def test_a_wrong_rank_or_channel_count_is_a_readable_error(run, tmp_path):
  _, workdir, _ = run
  out = export.export_saved_model(workdir, str(tmp_path / 'export'))
  signatures = tf.saved_model.load(os.path.join(out, 'saved_model')).signatures
  serve, files = signatures['serving_default'], signatures['files']
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'\[batch, height, width, 3\]'):
    serve(images=tf.zeros([16, 16, 3], tf.uint8))  # no batch axis
  with pytest.raises(tf.errors.InvalidArgumentError, match='3 channels'):
    serve(images=tf.zeros([1, 16, 16, 4], tf.uint8))
  with pytest.raises(tf.errors.InvalidArgumentError, match='1-D batch of encoded images'):
    files(files=tf.constant(b'not a batch'))


def test_every_format_with_a_report_through_the_cli(run, tmp_path):
  """export.formats writes the SavedModel, both TFLite files and ONNX; report.json scores each
  beside the original on the validation split, with batch-1 latencies; the int8 file is calibrated
  on training images and stays close to the float model."""
  from rockjax import cli
  from rockjax.serving import tflite
  config, workdir, _ = run
  config = config.copy_and_resolve_references()
  config.export.formats = 'saved_model,tflite,tflite_int8,onnx'
  config.export.latency_runs = 5
  config.export.output_dir = str(tmp_path / 'export')
  text = cli.export(config, workdir, [])
  assert 'saved_model, tflite, tflite_int8, onnx in' in text and 'report.json' in text
  out = tmp_path / 'export'
  meta = json.loads((out / 'model.json').read_text())
  assert meta['formats'] == ['saved_model', 'tflite', 'tflite_int8', 'onnx']
  report = json.loads((out / 'report.json').read_text())
  rows = report['rows']
  assert list(rows) == ['original', 'saved_model', 'tflite', 'tflite_int8', 'onnx']
  n = rows['original']['images']
  assert n > 0 and all(row['images'] == n and row['p50_ms'] > 0 for row in rows.values())
  assert rows['saved_model']['top1_agreement_with_original'] == 1.0
  assert rows['saved_model']['max_abs_probability_difference'] < 1e-4
  assert rows['tflite']['top1_agreement_with_original'] == 1.0
  assert rows['tflite']['max_abs_probability_difference'] < 1e-4
  assert rows['onnx']['top1_agreement_with_original'] == 1.0  # onnxruntime, from the TFLite file
  assert rows['onnx']['max_abs_probability_difference'] < 1e-4
  assert rows['tflite_int8']['file_bytes'] < rows['tflite']['file_bytes']
  assert rows['tflite_int8']['max_abs_probability_difference'] < 0.2
  predictor = inference.load_predictor(workdir, calibrated=True)  # what predict serves
  image = np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
  np.testing.assert_allclose(tflite.Interpreter(str(out / 'model.tflite'))(image),
                             predictor.probabilities(image), atol=1e-4)


def test_test_time_rotations_are_exported_into_every_format(run, tmp_path):
  """A run scored over its flips and quarter turns is exported with them: each format gives the
  predictor's averaged probabilities."""
  from rockjax import cli
  config, workdir, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  saved = json.loads((copy / 'config.json').read_text())
  saved.update(test_time_flip=True, test_time_rotate=True)
  (copy / 'config.json').write_text(json.dumps(saved))
  config = config.copy_and_resolve_references()
  config.export.formats = 'saved_model,tflite,onnx'
  config.export.latency_runs = 2
  config.export.output_dir = str(tmp_path / 'export')
  cli.export(config, str(copy), [])
  rows = json.loads((tmp_path / 'export' / 'report.json').read_text())['rows']
  for name in ('saved_model', 'tflite', 'onnx'):
    assert rows[name]['max_abs_probability_difference'] < 1e-4, (name, rows[name])
  predictor = inference.load_predictor(str(copy), calibrated=True)
  plain = inference.load_predictor(workdir, calibrated=True)
  image = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
  assert predictor.test_time_views == 'flips and rotations (8 views)'
  assert np.abs(predictor.probabilities(image) - plain.probabilities(image)).max() > 1e-4
  serve, _ = export.load_saved_model(str(tmp_path / 'export'))
  np.testing.assert_allclose(serve(image), predictor.probabilities(image), atol=1e-5)


def test_an_unknown_format_is_one_error_naming_the_choices(run, tmp_path):
  from rockjax.errors import ConfigError
  _, workdir, _ = run
  with pytest.raises(ConfigError, match='saved_model, tflite, tflite_int8, onnx'):
    export.export_workdir(workdir, dict(formats='saved_model,coreml'), str(tmp_path / 'x'))
  assert not (tmp_path / 'x').exists()
