"""rockjax.api, the notebook route: train, load, predict on paths, PIL images and arrays of any
size (as --mode=predict reads photos), evaluate and export."""

import os

import numpy as np
import pytest
from PIL import Image

import rockjax
from helpers import tiny_config, write_image
from rockjax.serving import predict as predicting, predictor as predictors


def test_load_predicts_paths_pil_images_and_arrays_as_predict_does(run, tmp_path):
  _, workdir, _ = run
  model = rockjax.load(workdir)
  paths = [write_image(str(tmp_path / 'a.jpg'), size=(50, 37)),
           write_image(str(tmp_path / 'b.png'), mode='RGBA', size=(20, 24), seed=1)]
  predictor = predictors.load_predictor(workdir, calibrated=True)  # as rockjax.load serves
  pixels, good, _ = predicting.read_inputs(paths, predictor.read_options)
  expected = predictor.probabilities(pixels)

  result = model.predict(paths)
  np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)
  assert result.classes == [model.class_names[i] for i in expected.argmax(1)]
  assert len(result) == 2 and result.confidence.shape == (2,)
  with Image.open(paths[1]) as img:
    pil = img.copy()  # RGBA: composited as training composites it
  array = np.asarray(Image.open(paths[0]))
  mixed = model.predict([array, pil, paths[0]])
  np.testing.assert_allclose(mixed.probabilities, expected[[0, 1, 0]], atol=1e-6)
  one = model.predict(paths[1])  # a single input is a batch of one
  np.testing.assert_allclose(one.probabilities, expected[1:], atol=1e-6)
  gray = model.predict(np.zeros((9, 7), np.uint8))
  assert gray.probabilities.shape == (1, len(model.class_names))
  with pytest.raises(ValueError, match='uint8'):
    model.predict(np.zeros((9, 7, 3), np.float32))
  with pytest.raises(TypeError, match='paths, PIL images or uint8 arrays'):
    model.predict([3])


def test_train_evaluate_and_export_from_python(tmp_path):
  config = tiny_config(num_epochs=1)
  summary = rockjax.train(config.to_dict(), str(tmp_path / 'run'), seed=3)
  assert summary['final_epoch'] == 1 and os.path.exists(tmp_path / 'run' / 'summary.json')
  records = rockjax.metrics(str(tmp_path / 'run'))
  assert [r['epoch'] for r in records] == [1] and 0 <= records[0]['val_accuracy'] <= 1
  assert rockjax.metrics(str(tmp_path)) == []  # no run there (yet)
  report = rockjax.evaluate(str(tmp_path / 'run'), output_dir=str(tmp_path / 'eval'))
  assert 0 <= report['accuracy'] <= 1 and os.path.exists(tmp_path / 'eval' / 'report.json')
  out = rockjax.export(str(tmp_path / 'run'), formats='onnx', report=False)
  assert sorted(os.listdir(out)) == [
      'model.json', 'model.onnx']  # converted through a TFLite file, which is not kept
  with pytest.raises(rockjax.errors.ConfigError, match='model.dropout'):
    rockjax.config('configs/residual.py', model__dropout=1.5)
