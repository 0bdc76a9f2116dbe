"""The reference recipe as the Keras notebooks ran it, on a rockjax run's own split.

    python scripts/keras_reference.py --config=configs/residual.py \
        --config.data.dir=../shared/data/rock7 --split_from=runs/residual-rock7 \
        --out=results/keras_reference_rock7.json

Reads the images of the run in `--split_from` (its split.json: the same training and validation
photos, decoded the same way), makes `--copies` augmented copies of every training photo once,
before training (the reference's offline augmentation, here with the config's host preset), and
trains the Keras 3 version of the config's network (scripts/peers.py: the same layers and parameter
count) with the reference's callbacks: Adam at the config's learning rate, batch size from the
config, early stopping on validation accuracy (the config's patience; the last epoch's weights
kept) and ReduceLROnPlateau on validation loss (the config's factor, patience and floor), for at
most `--config.num_epochs` epochs. Writes the final and best validation accuracy, the epochs run
and the wall time to `--out`, beside the rockjax run's own figures read from its summary.json.

Where the two differ: the reference's copies are made once (each epoch sees the same ten versions
of a photo), where rockjax's `data.repeats` draws fresh augmentations every epoch.
"""

from __future__ import annotations

import json
import os
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

import peers
from rockjax import bench, cli, fileio

FLAGS = flags.FLAGS


def define_flags() -> None:
  config_flags.DEFINE_config_file('config', None, 'Config file (with --config.* overrides).',
                                  lock_config=True)
  flags.DEFINE_string('split_from', None, "A rockjax run's workdir: its split.json is used.")
  flags.DEFINE_integer('copies', 10, 'Augmented copies of each training photo, made once.')
  flags.DEFINE_string('out', '', 'JSON file for the results (default: <split_from>/keras.json).')
  flags.mark_flags_as_required(['config', 'split_from'])


def augmented_copies(images: np.ndarray, labels: np.ndarray, augment_config, copies: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """`copies` seeded augmented versions of every image (copies=1 with no preset: the images)."""
  augmenter = bench.host_augmenter(augment_config, images.shape[1])
  if augmenter is None:
    return np.tile(images, (copies, 1, 1, 1)), np.tile(labels, copies)
  out = np.empty((copies * len(images),) + images.shape[1:], images.dtype)
  for c in range(copies):
    for i, image in enumerate(images):
      out[c * len(images) + i] = augmenter(image, seed * 1_000_003 + c * len(images) + i)
  return out, np.tile(labels, copies)


def run_keras(config, train, val, copies: int) -> dict:
  """Trains the Keras peer with the reference's callbacks; returns its figures."""
  import keras
  keras.utils.set_random_seed(config.seed)
  x, y = augmented_copies(train.images, train.labels, config.augment, copies, config.seed)
  order = np.random.default_rng(config.seed).permutation(len(x))
  model = peers.keras_model(config.model, config.data.image_size, len(train.class_names),
                            config.learning_rate, config.adam_eps, metrics=['accuracy'])
  callbacks = [keras.callbacks.ReduceLROnPlateau(
      monitor='val_loss', factor=config.plateau.factor, patience=config.plateau.patience,
      min_lr=config.plateau.min_lr, min_delta=config.plateau.min_delta)]
  if config.early_stopping_patience:
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor='val_accuracy', patience=config.early_stopping_patience,
        restore_best_weights=False))
  start = time.perf_counter()
  history = model.fit(x[order].astype(np.float32), y[order], batch_size=config.batch_size,
                      epochs=config.num_epochs, validation_data=(val.images.astype(np.float32),
                                                                 val.labels),
                      callbacks=callbacks, verbose=2)
  seconds = time.perf_counter() - start
  val_acc = [float(a) for a in history.history['val_accuracy']]
  best = int(np.argmax(val_acc))
  return dict(final_val_accuracy=val_acc[-1], best_val_accuracy=val_acc[best],
              best_epoch=best + 1, epochs=len(val_acc), train_seconds=round(seconds, 1),
              copies=copies, num_train=len(train), num_val=len(val), val_accuracy=val_acc,
              keras_version=keras.__version__)


def main(argv) -> int:
  del argv
  return cli.run_script(compare, FLAGS.config)


def compare(config) -> int:
  with config.unlocked():
    config.data.split_from = FLAGS.split_from
    config.data.kfold, config.data.fold = 0, -1
  data = bench.load_dataset(config, workdir=None)
  keras_figures = run_keras(config, data.train, data.val, FLAGS.copies)
  summary_path = os.path.join(FLAGS.split_from, 'summary.json')
  rockjax_figures = {}
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      rockjax_figures = json.load(f)
  result = dict(split_from=os.path.abspath(FLAGS.split_from), keras=keras_figures,
                rockjax={k: rockjax_figures.get(k) for k in (
                    'final_val_accuracy', 'best_val_accuracy', 'best_epoch', 'final_epoch',
                    'elapsed_seconds', 'stop_reason')})
  out = FLAGS.out or os.path.join(FLAGS.split_from, 'keras.json')
  fileio.write_json(out, result)
  logging.info('Keras reference: final %.2f%%, best %.2f%% (epoch %d of %d); rockjax: %s. '
               'Written to %s.', 100 * keras_figures['final_val_accuracy'],
               100 * keras_figures['best_val_accuracy'], keras_figures['best_epoch'],
               keras_figures['epochs'], result['rockjax'], out)
  return 0


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
