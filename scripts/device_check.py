"""The device check: rockjax on one GPU (or TPU), beside its PyTorch peer, in one command.

    python scripts/device_check.py --decoded=.data/rock7_96.npz --out=$OUT/device_check.json
    python scripts/device_check.py --quick --out=/tmp/device_check.json  # CPU, CI-size (a test)

Made for a bare Linux machine with an NVIDIA GPU, JAX (with CUDA), Flax, Optax, Orbax, NumPy,
absl-py, Pillow, PyYAML and (optionally) PyTorch installed, no TensorFlow and no network. Carry
beside the project, in folders that .git/info/exclude ignores:
  .whl/  ml_collections-1.1.0-py3-none-any.whl, the one package such a machine lacks; fetch it with
         python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
             --implementation cp -d .whl ml-collections==1.1.0
         (--wheels=.whl installs it into a private folder when `import ml_collections` fails);
  .data/ rock7_96.npz, the rock7 photos decoded at 96 px (~40 MiB):
         python scripts/decode_folder.py --config=configs/rocks.py \
             --config.data.dir=../shared/data/rock7 --out=.data/rock7_96.npz
Within --budget seconds (default 450) it measures, in this order, and rewrites one JSON file after
each part (a part that fails records its error; parts past the budget are listed as skipped):
  1. the machine: library versions, devices, a bf16 matmul's TFLOP/s (the practical peak);
  2. a 5-fold configs/rocks.py run on the decoded set (data.where=device, augmentation in the
     step, one dispatch per epoch): wall time, compile included, and accuracies;
  3. training images/s of the reference net (configs/residual.py, 32 px), the rocks net
     (configs/rocks.py, 96 px) and the pretrained recipe's EfficientNet-Lite0 (configs/pretrained.py
     at its size, every layer trained, depthwise convolutions as XLA's grouped convolution: the
     'auto' choice off the CPU; no weights needed), bf16 and float32, global batch 1024 and 256
     (EfficientNet: 256), most important first:
     the step alone on batches already on the device (1 and 8 steps per dispatch), end to end
     with the device-resident data path and the config's augmentation (1 and 8 per dispatch),
     compile seconds, FLOPs per step from XLA's cost analysis, achieved FLOP/s and the share of
     the peak (MFU); beside the same net in PyTorch (scripts/peers.py: channels-last, bf16
     autocast, torch.compile), timed in the same rounds, alternating;
  4. batch-1 predict latency (p50, p99) and batch-1024 throughput of the predictor.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback

PEAK_BF16_TFLOPS = {'H200': 989.0, 'H100': 989.0, 'A100': 312.0}  # dense, datasheet


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', required=True, help='the JSON file to write')
  parser.add_argument('--decoded', default='.data/rock7_96.npz', help='decoded rock7 (96 px)')
  parser.add_argument('--wheels', default='.whl', help='wheels to install if ml_collections lacks')
  parser.add_argument('--budget', type=float, default=450.0, help='seconds for all parts')
  parser.add_argument('--quick', action='store_true', help='tiny sizes, for a CPU test')
  parser.add_argument('--folds', type=int, default=5)
  return parser.parse_args()


def bootstrap(wheels: str) -> None:
  """ml_collections from carried wheels when it is missing; JAX must leave GPU memory to PyTorch."""
  os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
  if importlib.util.find_spec('ml_collections') is None:
    target = os.path.join(tempfile.gettempdir(), 'rockjax-site')
    files = glob.glob(os.path.join(wheels, '*.whl'))
    if not files:
      sys.exit(f'ml_collections is not installed and {wheels}/ holds no wheels (see this header)')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps',
                    '--no-compile', '--target', target] + files, check=True)
    sys.path.insert(0, target)
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scripts/: _bootstrap, peers


class Report:
  """The JSON result, rewritten after every part; parts run only while the budget lasts."""

  def __init__(self, path: str, budget: float):
    self.path, self.budget, self.start = path, budget, time.perf_counter()
    self.data = dict(parts={}, skipped=[])

  def left(self) -> float:
    return self.budget - (time.perf_counter() - self.start)

  def run(self, name: str, fn, *args, need: float = 0.0):
    if self.left() < need:
      self.data['skipped'].append(name)
      print(f'skipped {name}: {self.left():.0f}s of the budget left', flush=True)
      return None
    began = time.perf_counter()
    try:
      result = fn(*args)
    except Exception as e:  # one failed part must not cost the others
      result = dict(error=f'{type(e).__name__}: {e}', traceback=traceback.format_exc()[-3000:])
      print(f'{name} failed: {result["error"]}', flush=True)
    result = dict(result or {}, seconds=round(time.perf_counter() - began, 2))
    self.data['parts'][name] = result
    self.write()
    return result

  def write(self) -> None:
    self.data['total_seconds'] = round(time.perf_counter() - self.start, 2)
    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
    with open(self.path, 'w') as f:
      json.dump(self.data, f, indent=1, default=str)


def machine(quick: bool) -> dict:
  import importlib.metadata
  import jax
  import jax.numpy as jnp
  versions = {}
  for lib in ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy', 'torch',
              'ml-collections', 'jax-cuda13-plugin', 'jax-cuda12-plugin'):
    try:
      versions[lib] = importlib.metadata.version(lib)
    except importlib.metadata.PackageNotFoundError:
      pass
  n = 1024 if quick else 8192
  a = jnp.ones((n, n), jnp.bfloat16)
  mm = jax.jit(lambda x: x @ x)
  mm(a).block_until_ready()
  start = time.perf_counter()
  for _ in range(10):
    out = mm(a)
  out.block_until_ready()
  tflops = 10 * 2 * n ** 3 / (time.perf_counter() - start) / 1e12
  device = jax.devices()[0]
  print(f'machine: {device.device_kind} x{jax.device_count()}, jax {versions.get("jax")}, '
        f'bf16 matmul {tflops:.0f} TFLOP/s', flush=True)
  return dict(python=sys.version.split()[0], platform=platform.platform(), versions=versions,
              backend=jax.default_backend(), devices=[str(d) for d in jax.devices()],
              device_kind=device.device_kind, bf16_matmul_tflops=tflops,
              spec_peak_bf16_tflops=next((v for k, v in PEAK_BF16_TFLOPS.items()
                                          if k in device.device_kind), None))


def kfold_study(decoded: str, folds: int, quick: bool) -> dict:
  from rockjax import cli, configlib
  config = configlib.load_config_file(os.path.join(_root(), 'configs', 'rocks.py'))
  config.data.dir = os.path.abspath(decoded)
  config.data.kfold = folds
  config.data.test_fraction = 0.0  # folds over every photo, as the CPU study's rows
  config.data.where = 'device'
  config.augment.where = 'device'
  config.steps_per_dispatch = 64  # one dispatch per epoch on rock7 (26 steps of 64)
  if quick:
    config.data.image_size, config.model.widths = 32, (8, 16, 16, 16)
    config.num_epochs, config.warmup_epochs, config.batch_size = 2, 1.0, 8
    # On CPU the K steps of a dispatch are unrolled: K=2 compiles in a fraction of an epoch's
    # worth (26 -> 19 s for this part), and no one looks at the test's curves.
    config.steps_per_dispatch, config.curves = 2, False
  workdir = tempfile.mkdtemp(prefix='rockjax-study-')
  start = time.perf_counter()
  result = cli.run_training(config, workdir)
  seconds = time.perf_counter() - start
  accs = [f['best_val_accuracy'] for f in result['folds']]
  print(f'study: {folds}-fold rocks on {os.path.basename(decoded)} in {seconds:.1f}s: final '
        f'epoch {100 * result["mean_final_val_accuracy"]:.2f}% +- '
        f'{100 * result["std_final_val_accuracy"]:.2f}%, best epoch '
        f'{100 * result["mean_best_val_accuracy"]:.2f}% +- '
        f'{100 * result["std_best_val_accuracy"]:.2f}%', flush=True)
  return dict(wall_seconds=seconds, mean_final_val_accuracy=result['mean_final_val_accuracy'],
              std_final_val_accuracy=result['std_final_val_accuracy'],
              mean_best_val_accuracy=result['mean_best_val_accuracy'],
              std_best_val_accuracy=result['std_best_val_accuracy'], fold_accuracies=accs,
              epochs=[f['epochs'] for f in result['folds']],
              train_seconds=result['total_seconds'])


def _root() -> str:
  return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_row(net: str, dtype: str, batch: int, quick: bool, peak_tflops) -> dict:
  import benchmark_device as bd  # scripts/benchmark_device.py: the measuring pieces
  return bd.measure_row(net, dtype, batch, quick, peak_tflops)


def predict_part(quick: bool) -> dict:
  import benchmark_device as bd
  return bd.predict_latency(quick)


def main() -> int:
  args = parse_args()
  bootstrap(args.wheels)
  if args.quick:
    os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  import _bootstrap  # noqa: F401  (the repository root on sys.path)
  import jax
  # Every fold of the study compiles the same programs: JAX's persistent cache compiles them once.
  if not os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    jax.config.update('jax_compilation_cache_dir',
                      os.path.join(tempfile.gettempdir(), 'rockjax-jax-cache'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  report = Report(args.out, args.budget)
  info = report.run('machine', machine, args.quick) or {}
  peak = info.get('spec_peak_bf16_tflops') or info.get('bf16_matmul_tflops')
  decoded = args.decoded
  if args.quick and not os.path.exists(decoded):
    decoded = _quick_decoded_set()
  report.run('kfold_study', kfold_study, decoded, 2 if args.quick else args.folds, args.quick,
             need=30 if args.quick else 120)
  rows = [('rocks', 'bfloat16', 1024), ('residual', 'bfloat16', 1024),
          ('pretrained', 'bfloat16', 256), ('pretrained', 'float32', 256),
          ('rocks', 'float32', 1024), ('residual', 'float32', 1024),
          ('rocks', 'bfloat16', 256), ('residual', 'bfloat16', 256),
          ('rocks', 'float32', 256), ('residual', 'float32', 256)]
  if args.quick:
    rows = [('rocks', 'bfloat16', 8), ('pretrained', 'float32', 8)]
  for net, dtype, batch in rows:
    report.run(f'train {net} {dtype} batch {batch}', train_row, net, dtype, batch, args.quick,
               peak, need=10 if args.quick else 60)
  report.run('predict', predict_part, args.quick, need=5 if args.quick else 20)
  report.write()
  print(f'wrote {args.out} ({report.data["total_seconds"]:.0f}s; skipped: '
        f'{", ".join(report.data["skipped"]) or "nothing"})', flush=True)
  return 0


def _quick_decoded_set() -> str:
  """A small decoded set of the generated textures, for the CPU test of this script."""
  import rockjax
  from rockjax import bench, configlib
  config = configlib.load_config_file(os.path.join(_root(), 'configs', 'rocks.py'))
  config.data.image_size = 32
  config.data.synthetic.num_per_class = 16
  config.data.dir = bench.data_root(config.data)  # generates the set
  out = os.path.join(tempfile.mkdtemp(prefix='rockjax-decoded-'), 'quick.npz')
  rockjax.decode_folder(config, out)
  return out


if __name__ == '__main__':
  sys.exit(main())
