"""Training throughput against the Keras peer, the two input paths, and predict latency, in one
process on this machine (CPU).

    python scripts/benchmark.py [--quick] [--json=results.json] [--no_keras] [--sections=...]

Sections (train,paths,predict by default; --sections=... picks some):
  depthwise the two depthwise-convolution formulations (rockjax/models/depthwise.py), forward and
           gradients, on EfficientNet-Lite0's shapes, alternating.
  finetune fine-tuning images/s of configs/pretrained.py's network (EfficientNet-Lite0, ImageNet
           weights) beside the same network in Keras 3 with the same layers frozen, alternating:
           as the recipe trains it (288 px, the first 11 blocks frozen), with only the first 3
           blocks frozen, and the whole network at 224 px.
  train    train-step images/s and compile time of the shipped networks (configs/baseline.py and
           configs/residual.py at 32 px, configs/rocks.py at 96 px; the reference also at 64 px in
           a full run), the rocks and reference nets beside the same network in Keras 3
           (scripts/peers.py), alternating; ratio rockjax / Keras.
  paths    one epoch of configs/rocks.py (96 px, strong augmentation) on the generated set, end to
           end: the host path (tf.data + Albumentations) against the device-resident path
           (data.where=device, augmentation in the step) with 1 and 8 steps per dispatch, beside
           the step alone on batches already on the device; and the host pipeline alone with 1 and
           2 tf.data threads.
  dispatch one epoch of the README's first command (configs/residual.py, 32 px, ten passes, the
           device path) with 1 and 8 train steps per compiled call, and each one's first epoch
           (compilation included).
  predict  batch-1 latency (p50, p99) and batch-256 throughput of the predictor --mode=predict
           uses, beside the same function with the weights as arguments, the exported SavedModel
           and Keras' predict_on_batch.
Timing rounds alternate between contenders so that background load hits them alike; compare
ratios measured in one run, not absolute numbers across machines.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import jax
import numpy as np
import peers

import rockjax
from rockjax import bench
from rockjax.bench import studied

NUM_CLASSES = 4


def shipped_config(name: str, **overrides):
  """configs/<name>.py with overrides (keyword names use '__' for '.'), validated: rockjax.config."""
  return rockjax.config(os.path.join(_bootstrap.ROOT, 'configs', f'{name}.py'), **overrides)


def step_runner(config, augment: str | None = None, num_calls: int = 5) -> bench.TrainStep:
  return bench.TrainStep(config, NUM_CLASSES, augment=augment, num_calls=num_calls)


class KerasRunner:
  def __init__(self, config, batch: int, num_steps: int = 5):
    size = config.data.image_size
    self.model = peers.keras_model(config.model, size, NUM_CLASSES, config.learning_rate,
                                   frozen=bench.frozen_modules(config))
    self.num_params = int(self.model.count_params())
    rng = np.random.default_rng(0)
    self.batches = [(rng.integers(0, 256, (batch, size, size, 3)).astype(np.float32),
                     rng.integers(0, NUM_CLASSES, batch).astype(np.int32)) for _ in range(2)]
    self.num_steps, self.images = num_steps, batch * num_steps
    start = time.perf_counter()
    self.model.train_on_batch(*self.batches[0])
    self.compile_seconds = time.perf_counter() - start

  def run(self) -> None:
    for i in range(self.num_steps):
      self.model.train_on_batch(*self.batches[i % 2])


def train_section(quick: bool, keras: bool) -> list[dict]:
  rows = [('baseline', 32, False), ('residual', 32, True), ('rocks', 96, True)]
  if not quick:
    rows.insert(2, ('residual', 64, True))
  rounds = 3 if quick else 5
  out = []
  for name, size, with_keras in rows:
    config = shipped_config(name, data__image_size=size)
    batch = config.batch_size
    num_steps = max(2, (160 if quick else 640) // (batch * (size // 32) ** 2))
    contenders = {'rockjax': step_runner(config, num_calls=num_steps)}
    if with_keras and keras:
      contenders['keras'] = KerasRunner(config, batch, num_steps=num_steps)
    rates = bench.median_rates({k: c.run for k, c in contenders.items()}, rounds,
                         {k: c.images for k, c in contenders.items()})
    row = dict(config=name, model=config.model.name, size=size, batch=batch,
               images_per_s=rates['rockjax'], compile_seconds=contenders['rockjax'].compile_seconds,
               num_params=contenders['rockjax'].num_params)
    if 'keras' in contenders:
      row.update(keras_images_per_s=rates['keras'], keras_num_params=contenders['keras'].num_params,
                 ratio_vs_keras=rates['rockjax'] / rates['keras'])
    out.append(row)
    print(f'train  {name:<9} {size:>3}px batch {batch:<3} {rates["rockjax"]:7.0f} img/s  compile '
          f'{row["compile_seconds"]:5.1f}s  params {row["num_params"]:,}'
          + (f'  | keras {rates["keras"]:7.0f} img/s (params {row["keras_num_params"]:,})  '
             f'ratio {row["ratio_vs_keras"]:.2f}x' if 'ratio_vs_keras' in row else ''), flush=True)
  return out


DEPTHWISE_SHAPES = (  # (batch, height, width, channels), kernel, stride: Lite0 blocks at 224 px
    ((16, 56, 56, 96), 3, 1), ((16, 112, 112, 96), 3, 2), ((16, 28, 28, 240), 5, 2),
    ((16, 14, 14, 480), 5, 1))


def depthwise_section(quick: bool) -> list[dict]:
  """Milliseconds per call of each formulation: forward, and the gradients of a squared sum."""
  out = []
  shapes = DEPTHWISE_SHAPES[:1] if quick else DEPTHWISE_SHAPES
  for shape, kernel, stride in shapes:
    rng = np.random.default_rng(0)
    x = jax.numpy.asarray(rng.normal(size=shape), np.float32)
    w = jax.numpy.asarray(rng.normal(size=(kernel, kernel, 1, shape[-1])), np.float32)
    fns = {}
    for impl in ('xla', 'shifted'):
      conv = lambda x, w, impl=impl: studied.depthwise_conv(x, w, stride, impl)
      fns[f'{impl} forward'] = jax.jit(conv)
      fns[f'{impl} gradients'] = jax.jit(jax.grad(lambda x, w, c=conv: (c(x, w) ** 2).sum(),
                                                  argnums=(0, 1)))
    for fn in fns.values():
      jax.block_until_ready(fn(x, w))
    runs = {name: (lambda fn=fn: jax.block_until_ready(fn(x, w))) for name, fn in fns.items()}
    rates = bench.median_rates(runs, 3 if quick else 7, {name: 1 for name in runs})
    ms = {name: 1000 / rate for name, rate in rates.items()}
    row = dict(shape=list(shape), kernel=kernel, stride=stride, ms=ms,
               forward_speedup=ms['xla forward'] / ms['shifted forward'],
               gradient_speedup=ms['xla gradients'] / ms['shifted gradients'])
    out.append(row)
    print(f'depthwise {shape} k{kernel} s{stride}: forward xla {ms["xla forward"]:.1f} ms, shifted '
          f'{ms["shifted forward"]:.1f} ms ({row["forward_speedup"]:.0f}x); gradients xla '
          f'{ms["xla gradients"]:.1f} ms, shifted {ms["shifted gradients"]:.1f} ms '
          f'({row["gradient_speedup"]:.1f}x)', flush=True)
  return out


def finetune_section(quick: bool, keras: bool) -> list[dict]:
  """EfficientNet-Lite0 fine-tuning steps against the Keras peer (the same frozen layers)."""
  recipe = shipped_config('pretrained')
  rows = [(recipe.data.image_size, recipe.init_freeze),
          (recipe.data.image_size, 'stem:block_2'), (224, '')]
  if quick:
    rows = rows[:1]
  out = []
  for size, frozen in rows:
    config = shipped_config('pretrained', data__image_size=size, init_freeze=frozen)
    batch = config.batch_size
    num_steps = 2 if quick else 4
    contenders = {'rockjax': step_runner(config, num_calls=num_steps)}
    if keras:
      contenders['keras'] = KerasRunner(config, batch, num_steps=num_steps)
    rates = bench.median_rates({k: c.run for k, c in contenders.items()}, 3 if quick else 5,
                         {k: c.images for k, c in contenders.items()})
    row = dict(model=config.model.name, size=size, batch=batch, frozen=frozen,
               images_per_s=rates['rockjax'], compile_seconds=contenders['rockjax'].compile_seconds,
               num_params=contenders['rockjax'].num_params)
    if keras:
      row.update(keras_images_per_s=rates['keras'], keras_num_params=contenders['keras'].num_params,
                 ratio_vs_keras=rates['rockjax'] / rates['keras'])
    out.append(row)
    print(f'finetune {config.model.name} {size:>3}px batch {batch} frozen {frozen or "none":<24} '
          f'{rates["rockjax"]:6.1f} img/s'
          + (f'  | keras {rates["keras"]:6.1f} img/s  ratio {row["ratio_vs_keras"]:.2f}x'
             if keras else ''), flush=True)
  return out


def dispatch_section(quick: bool) -> dict:
  """One epoch of the README's first command (configs/residual.py on the generated set: ten passes,
  device path) with 1 and 8 steps per dispatch, alternating; and each one's first epoch."""
  base = shipped_config('residual', num_devices=1)
  rt = bench.make_runtime(base)
  dataset = bench.load_dataset(base)
  runners = {f'{k} step(s) per dispatch': bench.EpochRunner(
      shipped_config('residual', num_devices=1, steps_per_dispatch=k), dataset, rt)
      for k in (1, 8)}
  rates = bench.median_rates({k: r.run for k, r in runners.items()}, 2 if quick else 3,
                             {k: r.images for k, r in runners.items()})
  first = {k: r.first_epoch_seconds for k, r in runners.items()}
  for label, rate in rates.items():
    print(f'dispatch  configs/residual.py, {label:<24} {rate:7.1f} img/s  first epoch '
          f'{first[label]:5.1f} s (compilation included)', flush=True)
  return dict(steps_per_epoch=runners['1 step(s) per dispatch'].steps_per_epoch,
              epoch_images_per_s=rates, first_epoch_seconds=first,
              k8_vs_k1=rates['8 step(s) per dispatch'] / rates['1 step(s) per dispatch'])


def paths_section(quick: bool) -> dict:
  """One epoch of the rocks recipe end to end by each path, alternating, beside the step alone."""
  base = shipped_config('rocks', num_devices=1, data__synthetic__num_per_class=128 if quick else 320)
  rt = bench.make_runtime(base)
  dataset = bench.load_dataset(base)
  variants = {
      'host path (tf.data + Albumentations)': dict(),
      'device path, 1 step per dispatch': dict(data__where='device', augment__where='device'),
      'device path, 8 steps per dispatch': dict(data__where='device', augment__where='device',
                                                steps_per_dispatch=8),
  }
  runners = {label: bench.EpochRunner(shipped_config('rocks', num_devices=1, **overrides),
                                      dataset, rt)
             for label, overrides in variants.items()}
  spe = runners['host path (tf.data + Albumentations)'].steps_per_epoch
  images = spe * base.batch_size
  contenders = {label: r.run for label, r in runners.items()}
  contenders['step alone (strong augmentation in the step)'] = step_runner(
      base, augment='strong', num_calls=spe).run
  contenders['step alone (no augmentation)'] = step_runner(base, num_calls=spe).run
  rates = bench.median_rates(contenders, 2 if quick else 3, {k: images for k in contenders})
  host = rates['host path (tf.data + Albumentations)']
  alone = rates['step alone (strong augmentation in the step)']
  for label, rate in rates.items():
    print(f'paths  {label:<46} {rate:7.1f} img/s  ({rate / host:.2f}x the host path, '
          f'{rate / alone:.2f}x the step alone)', flush=True)
  threads = {}
  for n in (1, 2):
    start, count = time.perf_counter(), 0
    for epoch in (1, 2):  # the first warms tf.data up; both are counted (same work each)
      for b in bench.host_batches(base, dataset.train, epoch=epoch, threads=n):
        count += b['label'].size
    threads[n] = count / (time.perf_counter() - start)
    print(f'paths  host pipeline alone (strong, 96 px), {n} thread(s): {threads[n]:7.0f} img/s',
          flush=True)
  return dict(images_per_epoch=images, epoch_images_per_s=rates,
              device_k8_vs_step_without_augmentation=(
                  rates['device path, 8 steps per dispatch'] / rates['step alone (no augmentation)']),
              device_k1_vs_host=rates['device path, 1 step per dispatch'] / host,
              device_k8_vs_host=rates['device path, 8 steps per dispatch'] / host,
              device_k8_vs_step_alone=rates['device path, 8 steps per dispatch'] / alone,
              host_pipeline_images_per_s_by_threads=threads)


def predict_section(quick: bool, keras: bool) -> dict:
  config = shipped_config('residual')
  predictor = bench.fresh_predictor(config, [str(i) for i in range(NUM_CLASSES)])
  variables = predictor.variables
  as_arguments = jax.jit(predictor.predict_fn())
  one = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
  runs = 100 if quick else 500
  constants, arguments = [], []
  for _ in range(2):  # alternating, twice; the better of the two
    constants.append(bench.latency_ms(lambda: predictor.probabilities(one, batch_size=1), runs))
    arguments.append(bench.latency_ms(lambda: np.asarray(as_arguments(variables, one)), runs))
  (p50, p99), (a50, a99) = min(constants), min(arguments)
  big = np.repeat(one, 256, axis=0)
  predictor.probabilities(big)
  reps = 3 if quick else 10
  start = time.perf_counter()
  for _ in range(reps):
    predictor.probabilities(big)
  out = dict(batch1_p50_ms=p50, batch1_p99_ms=p99, weights_as_arguments_batch1_p50_ms=a50,
             weights_as_arguments_batch1_p99_ms=a99,
             images_per_s_batch256=256 * reps / (time.perf_counter() - start))
  print(f'predict rockjax batch-1 p50 {p50:.2f} ms p99 {p99:.2f} ms (weights as arguments: '
        f'{a50:.2f} / {a99:.2f} ms); {out["images_per_s_batch256"]:.0f} img/s at batch 256',
        flush=True)
  import tempfile
  import tensorflow as tf
  from jax.experimental import jax2tf
  with tempfile.TemporaryDirectory() as tmp:
    module = tf.Module()
    tf_fn = jax2tf.convert(lambda x: as_arguments(variables, x),
                           polymorphic_shapes=['(b, 32, 32, 3)'], with_gradient=False)
    module.serve = tf.function(lambda x: tf_fn(x), autograph=False,
                               input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.uint8)])
    tf.saved_model.save(module, tmp)
    serve = tf.saved_model.load(tmp).serve
    one_tf = tf.constant(one)
    out['savedmodel_batch1_p50_ms'], out['savedmodel_batch1_p99_ms'] = bench.latency_ms(
        lambda: serve(one_tf).numpy(), runs)
  print(f'predict SavedModel (jax2tf) batch-1 p50 {out["savedmodel_batch1_p50_ms"]:.2f} ms',
        flush=True)
  if keras:
    kmodel = peers.keras_model(config.model, 32, NUM_CLASSES)
    x1 = one.astype(np.float32)
    out['keras_batch1_p50_ms'], out['keras_batch1_p99_ms'] = bench.latency_ms(
        lambda: kmodel.predict_on_batch(x1), runs)
    print(f'predict Keras predict_on_batch batch-1 p50 {out["keras_batch1_p50_ms"]:.2f} ms',
          flush=True)
  return out


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true', help='a reduced run (~4 min on 2 cores)')
  parser.add_argument('--json', default='', help='also write the results to this JSON file')
  parser.add_argument('--no_keras', action='store_true', help='skip the Keras peer')
  parser.add_argument('--sections', default='train,paths,predict')
  args = parser.parse_args()
  sections = args.sections.split(',')
  results = bench.machine(quick=args.quick)
  print(f'rockjax benchmark on {results["processor"]} ({results["cpu_count"]} cores), '
        f'{results["jax_backend"]}{" (quick)" if args.quick else ""}', flush=True)
  if 'train' in sections:
    results['train'] = train_section(args.quick, not args.no_keras)
  if 'depthwise' in sections:
    results['depthwise'] = depthwise_section(args.quick)
  if 'finetune' in sections:
    results['finetune'] = finetune_section(args.quick, not args.no_keras)
  if 'paths' in sections:
    results['paths'] = paths_section(args.quick)
  if 'dispatch' in sections:
    results['dispatch'] = dispatch_section(args.quick)
  if 'predict' in sections:
    results['predict'] = predict_section(args.quick, not args.no_keras)
  if args.json:
    bench.write_json(args.json, results)
    print(f'wrote {args.json}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
