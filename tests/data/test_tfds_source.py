"""data.tfds: a TFDS image-classification set by name, offline (TFDS's own mock data), through the
same preprocessing, splits, training and evaluation as a folder."""

import numpy as np
import pytest

tfds = pytest.importorskip('tensorflow_datasets')

from rockjax import errors  # noqa: E402
from rockjax.data import dataset as datasets, folder, tfds_source  # noqa: E402
from rockjax.serving import evaluation  # noqa: E402
from rockjax.training import loop  # noqa: E402
from helpers import tiny_config  # noqa: E402

FLOWERS = ['dandelion', 'daisy', 'tulips', 'sunflowers', 'roses']


def mock(num_examples=40):
  return tfds.testing.mock_data(num_examples=num_examples,
                                policy=tfds.testing.MockPolicy.USE_CODE)


def test_a_dataset_by_name_is_read_split_and_saved_like_a_folder(tmp_path):
  config = tiny_config(data__tfds='tf_flowers', data__tfds_data_dir=str(tmp_path / 'tfds'),
                       data__image_size=16, data__test_fraction=0.2)
  with mock():
    ds = datasets.load_dataset(config, str(tmp_path / 'w'))
  assert ds.class_names == FLOWERS
  assert len(ds.train) + len(ds.val) + len(ds.test) == 40
  assert ds.train.images.shape[1:] == (16, 16, 3) and ds.train.images.dtype == np.uint8
  assert all(p.startswith('train/') for p in ds.train.paths + ds.val.paths + ds.test.paths)
  assert ds.report['root'] == 'tfds:tf_flowers' and ds.report['label_key'] == 'label'
  with mock():  # the saved split is reused, with the same images (mock data is deterministic)
    again = datasets.load_dataset(config, str(tmp_path / 'w'))
  assert again.val.paths == ds.val.paths
  np.testing.assert_array_equal(again.val.images, ds.val.images)


def test_named_splits_are_used_as_given(tmp_path):
  config = tiny_config(data__tfds='tf_flowers', data__tfds_data_dir=str(tmp_path),
                       data__train_split='train[:80%]', data__val_split='train[80%:]')
  with mock(12):
    ds = datasets.load_dataset(config)
  assert (len(ds.train), len(ds.val), ds.test) == (12, 12, None)
  assert ds.val.paths[0] == 'train[80%:]/000000'


def test_images_of_any_channel_count_become_the_runs_rgb():
  options = folder.ReadOptions(image_size=8, background=200)
  grey = tfds_source.to_image(np.full((10, 6, 1), 50, np.uint8), options)
  assert grey.shape == (8, 8, 3) and (grey == 50).all()
  rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent: the background grey
  assert (tfds_source.to_image(rgba, options) == 200).all()


def test_feature_keys_are_found_or_must_be_named():
  features = tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=(8, 8, 3)), 'mask': tfds.features.Image(shape=(8, 8, 1)),
      'label': tfds.features.ClassLabel(names=['a', 'b'])})
  with pytest.raises(errors.ConfigError, match='tfds_image_key.*2 Image features'):
    tfds_source.feature_keys(features)
  assert tfds_source.feature_keys(features, image_key='image') == ('image', 'label')
  with pytest.raises(errors.ConfigError, match="tfds_label_key: 'kind' is not"):
    tfds_source.feature_keys(features, image_key='image', label_key='kind')


def test_unknown_or_unprepared_datasets_are_one_line_errors(tmp_path):
  with pytest.raises(errors.ConfigError, match="data.tfds: 'no_such_set_xyz'"):
    datasets.load_dataset(tiny_config(data__tfds='no_such_set_xyz'))
  with pytest.raises(errors.DataError, match='cannot read split .*prepared under'):
    datasets.load_dataset(tiny_config(data__tfds='tf_flowers',
                                      data__tfds_data_dir=str(tmp_path / 'empty')))
  with pytest.raises(errors.ConfigError, match='both name the data'):
    tiny_config(data__tfds='tf_flowers', data__dir=str(tmp_path))


def test_a_run_trains_and_evaluates_on_a_tfds_set(tmp_path):
  config = tiny_config(num_epochs=1, batch_size=8, data__tfds='tf_flowers',
                       data__tfds_data_dir=str(tmp_path / 'tfds'))
  with mock(48):
    summary = loop.train_and_evaluate(config, str(tmp_path / 'w'))
    report = evaluation.evaluate_workdir(str(tmp_path / 'w'), config.eval)
  assert summary['class_names'] == FLOWERS and summary['epochs'] == 1
  assert report['num_examples'] == summary['num_val']
  assert report['accuracy'] == pytest.approx(summary['best_val_accuracy'], abs=1e-9)
