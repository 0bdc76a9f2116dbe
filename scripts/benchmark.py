"""Throughput, compile time, input pipeline and predict latency, with the Keras peer, in one process.

    python scripts/benchmark.py [--quick] [--json=results.json]

Measures, on this machine, after warm-up:
  1. train-step images/s of SeedCNN and ResidualCNN at 32 and 64 px (the pmap step the trainer uses),
  2. compile time (first finished step),
  3. input-pipeline images/s for each augmentation preset (tf.data + Albumentations, no training),
  4. predict latency at batch 1 (p50, p99) and throughput at a large batch (jitted, as --mode=predict),
  5. the same reference residual net in Keras 3 (TensorFlow backend): same input, batch, optimizer and
     number of steps, timed the same way and alternating with rockjax; ratios rockjax / Keras.
Timing rounds alternate between the contenders so that background load hits both alike. Absolute
numbers depend on the machine; compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import jax
import numpy as np

from rockjax import configlib, models
from rockjax.augment import presets
from rockjax.data import pipeline
from rockjax.serving import predictor as predictors
from rockjax.training import optim, state as states, steps

NUM_CLASSES = 4
CONFIG_FILES = {'SeedCNN': 'baseline.py', 'ResidualCNN': 'residual.py'}


def model_config(name: str, **overrides):
  """The shipped config of that network (configs/baseline.py or configs/residual.py)."""
  c = configlib.load_config_file(os.path.join(_bootstrap.ROOT, 'configs', CONFIG_FILES[name]))
  for k, v in overrides.items():
    configlib.set_value(c, k.replace('__', '.'), v)
  return c


def fake_batches(n: int, size: int, batch: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  return [dict(image=rng.integers(0, 256, (1, batch, size, size, 3), dtype=np.uint8),
               label=rng.integers(0, NUM_CLASSES, (1, batch)).astype(np.int32)) for _ in range(n)]


class RockjaxTrainer:
  """The trainer's own pmap step on one device, fed device-resident batches."""

  def __init__(self, config, size: int, batch: int, device_augment: str | None = None):
    devices = jax.local_devices()[:1]
    self.mesh = steps.make_mesh(devices)
    model = models.create_model(config.model, NUM_CLASSES, bn_axis_name=steps.AXIS)
    schedule = optim.learning_rate_schedule(config, 100)
    tx = optim.create_optimizer(config, schedule)
    state = states.create_train_state(model, tx, jax.random.PRNGKey(0), size)
    self.num_params = int(sum(x.size for x in jax.tree.leaves(state.params))
                          + sum(x.size for x in jax.tree.leaves(state.batch_stats)))
    self.state = steps.replicate(state, self.mesh)
    spec = presets.spec_with_defaults(device_augment) if device_augment else None
    self.step = steps.pmap_train_step(devices, schedule=schedule, seed=0, label_smoothing=0.0,
                                      augment_spec=spec)
    self.batches = [steps.shard_batch(b, self.mesh) for b in fake_batches(4, size, batch)]
    start = time.perf_counter()
    self.run(1)
    self.compile_seconds = time.perf_counter() - start

  def run(self, n: int) -> None:
    metrics = None
    for i in range(n):
      self.state, metrics = self.step(self.state, self.batches[i % len(self.batches)])
    jax.block_until_ready(metrics)


def keras_residual(size: int, num_classes: int = NUM_CLASSES):
  """The reference residual CNN, as the reference wrote it (Keras 3)."""
  import keras
  from keras import layers
  he = keras.initializers.HeNormal()
  inputs = keras.Input((size, size, 3))
  x = layers.Rescaling(1 / 255)(inputs)
  x = layers.Conv2D(16, 7, padding='same', activation='relu', kernel_initializer=he)(x)
  x = layers.BatchNormalization()(x)
  x = layers.MaxPooling2D()(x)
  x = layers.Dropout(0.2)(x)
  widths, shortcuts = (32, 64, 128, 256), (5, 3, 3, 3)
  for i, (w, k) in enumerate(zip(widths, shortcuts)):
    shortcut = layers.Conv2D(w, k, padding='same', activation='relu', kernel_initializer=he)(x)
    y = x
    for j in range(3):
      y = layers.Conv2D(w, 3, padding='same', activation='relu', kernel_initializer=he)(y)
      if j < 2:
        y = layers.BatchNormalization()(y)
    x = layers.BatchNormalization()(layers.Add()([y, shortcut]))
    x = layers.MaxPooling2D()(x)
    if i < len(widths) - 1:
      x = layers.Dropout(0.2)(x)
  x = layers.GlobalAveragePooling2D()(x)
  outputs = layers.Dense(num_classes, kernel_initializer=he)(x)
  model = keras.Model(inputs, outputs)
  model.compile(optimizer=keras.optimizers.Adam(1e-4),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  return model


class KerasTrainer:
  def __init__(self, size: int, batch: int):
    self.model = keras_residual(size)
    self.num_params = int(self.model.count_params())
    rng = np.random.default_rng(0)
    self.batches = [(rng.integers(0, 256, (batch, size, size, 3)).astype(np.float32),
                     rng.integers(0, NUM_CLASSES, batch).astype(np.int32)) for _ in range(4)]
    start = time.perf_counter()
    self.run(1)
    self.compile_seconds = time.perf_counter() - start

  def run(self, n: int) -> None:
    for i in range(n):
      x, y = self.batches[i % len(self.batches)]
      self.model.train_on_batch(x, y)


def alternate(contenders: dict, steps_per_round: int, rounds: int, batch: int) -> dict:
  """images/s of each contender: median over rounds, the contenders taking turns each round."""
  times = {name: [] for name in contenders}
  for _ in range(rounds):
    for name, c in contenders.items():
      start = time.perf_counter()
      c.run(steps_per_round)
      times[name].append(time.perf_counter() - start)
  return {name: batch * steps_per_round / float(np.median(t)) for name, t in times.items()}


def latency(fn, runs: int) -> tuple[float, float]:
  fn()
  fn()
  t = []
  for _ in range(runs):
    start = time.perf_counter()
    fn()
    t.append(time.perf_counter() - start)
  ms = 1000 * np.asarray(t)
  return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def pipeline_rate(preset: str, size: int, batch: int, n_images: int) -> float:
  c = configlib.base_config()
  c.augment.preset = preset
  augmenter = presets.host_augmenter(c.augment, size)
  images = np.random.default_rng(0).integers(0, 256, (n_images, size, size, 3), dtype=np.uint8)
  labels = np.zeros(n_images, np.int32)
  best = 0.0
  for epoch in (1, 2):  # the first epoch warms up tf.data; report the second
    start = time.perf_counter()
    count = 0
    for b in pipeline.train_batches(images, labels, global_batch=batch, num_devices=1,
                                          seed=0, epoch=epoch, augmenter=augmenter):
      count += b['label'].size
    best = count / (time.perf_counter() - start)
  return best


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true', help='a reduced run (< 3 min on 2 cores)')
  parser.add_argument('--json', default='', help='also write the results to this JSON file')
  parser.add_argument('--batch', type=int, default=32, help='global batch (default: the config)')
  parser.add_argument('--no_keras', action='store_true', help='skip the Keras peer')
  args = parser.parse_args()
  quick = args.quick
  batch = args.batch
  steps_per_round, rounds = (5, 3) if quick else (20, 5)
  results = dict(date=datetime.date.today().isoformat(), machine=platform.platform(),
                 processor=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
                 jax_backend=jax.default_backend(), devices=[str(d) for d in jax.local_devices()],
                 batch=batch, quick=quick, libraries={},
                 xla_flags=os.environ.get('XLA_FLAGS', ''))
  import importlib.metadata as md
  for lib in ('jax', 'jaxlib', 'flax', 'optax', 'tensorflow-cpu', 'tensorflow', 'keras',
              'albumentations'):
    try:
      results['libraries'][lib] = md.version(lib)
    except md.PackageNotFoundError:
      pass
  print(f'rockjax benchmark on {results["processor"]} ({results["cpu_count"]} cores), '
        f'{results["jax_backend"]}, batch {batch}{" (quick)" if quick else ""}', flush=True)

  # 1 + 2 + 5: training, with the Keras peer alternating on the residual net at 32 px.
  train_rows = []
  sizes = (32,) if quick else (32, 64)
  for size in sizes:
    for name in ('SeedCNN', 'ResidualCNN'):
      contenders = {'rockjax': RockjaxTrainer(model_config(name), size, batch)}
      keras_here = name == 'ResidualCNN' and not args.no_keras
      if keras_here:
        contenders['keras'] = KerasTrainer(size, batch)
      rates = alternate(contenders, steps_per_round, rounds, batch)
      row = dict(model=name, size=size, images_per_s=rates['rockjax'],
                 compile_seconds=contenders['rockjax'].compile_seconds,
                 num_params=contenders['rockjax'].num_params)
      if keras_here:
        row.update(keras_images_per_s=rates['keras'], keras_num_params=contenders['keras'].num_params,
                   keras_first_step_seconds=contenders['keras'].compile_seconds,
                   ratio=rates['rockjax'] / rates['keras'])
      train_rows.append(row)
      print(f'train  {name:<12} {size:>3}px  {rates["rockjax"]:8.0f} img/s  compile '
            f'{row["compile_seconds"]:5.1f}s  params {row["num_params"]:,}'
            + (f'  | keras {rates["keras"]:8.0f} img/s (params {row["keras_num_params"]:,})  '
               f'ratio {row["ratio"]:.2f}x' if keras_here else ''), flush=True)
  results['train'] = train_rows
  ref = next(r for r in train_rows if r['model'] == 'ResidualCNN' and r['size'] == 32)
  results['train_images_per_s'] = ref['images_per_s']
  if 'keras_images_per_s' in ref:
    results['keras_train_images_per_s'] = ref['keras_images_per_s']
    results['train_ratio_vs_keras'] = ref['ratio']
    results['same_param_count'] = ref['num_params'] == ref['keras_num_params']

  # Levers: the conv formulation (always), and in a full run batch size, bfloat16, block order,
  # and augmentation inside the step.
  levers = []
  lever_list = [('conv_impl=xla (plain XLA convs)', model_config('ResidualCNN',
                                                                  model__conv_impl='xla'), batch,
                 None),
                ('device aug flip_bright', model_config('ResidualCNN'), batch, 'flip_bright')]
  if not quick:
    lever_list += [('batch 128', model_config('ResidualCNN'), 128, None),
                   ('bfloat16', model_config('ResidualCNN', model__dtype='bfloat16'), batch, None),
                   ('bn_relu', model_config('ResidualCNN', model__block_order='bn_relu'), batch,
                    None),
                   ('device aug strong', model_config('ResidualCNN'), batch, 'strong')]
  base = RockjaxTrainer(model_config('ResidualCNN'), 32, batch)
  for label, cfg, b, dev_aug in lever_list:
    t = RockjaxTrainer(cfg, 32, b, dev_aug)
    times = {'default': [], 'lever': []}
    for _ in range(rounds):  # alternating with the default configuration, side by side
      for name, trainer, n in (('default', base, batch), ('lever', t, b)):
        start = time.perf_counter()
        trainer.run(steps_per_round)
        times[name].append((time.perf_counter() - start) / (n * steps_per_round))
    rate = 1.0 / float(np.median(times['lever']))
    ratio = float(np.median(times['default'])) / float(np.median(times['lever']))
    levers.append(dict(lever=label, batch=b, images_per_s=rate, ratio_vs_default=ratio))
    print(f'lever  {label:<32} {rate:8.0f} img/s  ({ratio:.2f}x the default, side by side)',
          flush=True)
  results['levers'] = levers

  # Profile: forward vs forward+backward of the reference net, per conv formulation.
  profile = {}
  for impl in ('xla', 'auto'):
    cfg = model_config('ResidualCNN', model__conv_impl=impl)
    model = models.create_model(cfg.model, NUM_CLASSES)
    x = fake_batches(1, 32, batch)[0]['image'][0]
    v = model.init(jax.random.PRNGKey(0), x, train=False)

    def loss(p, v=v, model=model, x=x):
      out, _ = model.apply({'params': p, 'batch_stats': v['batch_stats']}, x, train=True,
                           mutable=['batch_stats'], rngs={'dropout': jax.random.PRNGKey(1)})
      return out.sum()
    fwd, both = jax.jit(loss), jax.jit(jax.grad(loss))
    f_ms = latency(lambda: jax.block_until_ready(fwd(v['params'])), 10 if quick else 30)[0]
    b_ms = latency(lambda: jax.block_until_ready(both(v['params'])), 10 if quick else 30)[0]
    profile[impl] = dict(forward_ms=f_ms, forward_backward_ms=b_ms)
    print(f'profile conv_impl={impl:<5} forward {f_ms:6.1f} ms, forward+backward {b_ms:6.1f} ms '
          f'per batch of {batch}', flush=True)
  results['profile'] = profile

  # 3: input pipeline per preset.
  n_images = 1024 if quick else 4096
  pipe = {}
  for preset in ('none', 'flip', 'crop', 'flip_bright', 'strong'):
    pipe[preset] = pipeline_rate(preset, 32, batch, n_images)
    print(f'input  {preset:<12}  32px  {pipe[preset]:8.0f} img/s  '
          f'({pipe[preset] / ref["images_per_s"]:.1f}x the ResidualCNN step)', flush=True)
  results['pipeline_images_per_s'] = pipe

  # 4: predict latency (batch 1) and throughput (large batch): the Predictor that --mode=predict
  # uses (weights compiled in as constants), next to the same function taking them as arguments.
  config = model_config('ResidualCNN')
  model = models.create_model(config.model, NUM_CLASSES)
  variables = jax.jit(lambda: model.init(jax.random.PRNGKey(0), np.zeros((1, 32, 32, 3), np.uint8),
                                         train=False))()
  predictor = predictors.Predictor(config=config, class_names=[str(i) for i in range(NUM_CLASSES)],
                                  model=model, variables=variables, epoch=0)
  predict = jax.jit(predictor.predict_fn())  # (variables, images): weights as arguments
  one = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
  runs = 100 if quick else 500
  timings = {}
  for _ in range(2):  # alternating, twice
    timings.setdefault('constants', []).append(
        latency(lambda: predictor.probabilities(one, batch_size=1), runs))
    timings.setdefault('arguments', []).append(
        latency(lambda: np.asarray(predict(variables, one)), runs))
  p50, p99 = min(timings['constants'])
  a50, a99 = min(timings['arguments'])
  big = np.repeat(one, 256, axis=0)
  predictor.probabilities(big)
  start = time.perf_counter()
  reps = 3 if quick else 10
  for _ in range(reps):
    predictor.probabilities(big)
  results.update(predict_batch1_p50_ms=p50, predict_batch1_p99_ms=p99,
                 predict_weights_as_arguments_batch1_p50_ms=a50,
                 predict_weights_as_arguments_batch1_p99_ms=a99,
                 predict_images_per_s_batch256=256 * reps / (time.perf_counter() - start))
  print(f'predict rockjax batch-1 p50 {p50:.2f} ms p99 {p99:.2f} ms (weights as jit arguments '
        f'instead of constants: p50 {a50:.2f} ms p99 {a99:.2f} ms); '
        f'{results["predict_images_per_s_batch256"]:.0f} img/s at batch 256', flush=True)
  # The exported SavedModel (jax2tf), loaded back and called as a server would call it.
  import tempfile
  import tensorflow as tf
  from jax.experimental import jax2tf
  with tempfile.TemporaryDirectory() as tmp:
    module = tf.Module()
    tf_fn = jax2tf.convert(lambda x: predict(variables, x), polymorphic_shapes=['(b, 32, 32, 3)'],
                           with_gradient=False)
    module.serve = tf.function(lambda x: tf_fn(x), autograph=False,
                               input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.uint8)])
    tf.saved_model.save(module, tmp)
    serve = tf.saved_model.load(tmp).serve
    one_tf = tf.constant(one)
    sp50, sp99 = latency(lambda: serve(one_tf).numpy(), runs)
  results.update(savedmodel_batch1_p50_ms=sp50, savedmodel_batch1_p99_ms=sp99)
  print(f'predict SavedModel (jax2tf) batch-1 p50 {sp50:.2f} ms p99 {sp99:.2f} ms', flush=True)
  if not args.no_keras:
    kmodel = keras_residual(32)
    x1 = one.astype(np.float32)
    kp50, kp99 = latency(lambda: kmodel.predict_on_batch(x1), runs)
    results.update(keras_predict_batch1_p50_ms=kp50, keras_predict_batch1_p99_ms=kp99,
                   predict_latency_ratio_vs_keras=p50 / kp50)
    print(f'predict keras   batch-1 p50 {kp50:.2f} ms p99 {kp99:.2f} ms '
          f'(rockjax/keras latency ratio {p50 / kp50:.2f})', flush=True)
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=2)
    print(f'wrote {args.json}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
