"""The measuring pieces of scripts/device_check.py: one training row (rockjax's step alone and end
to end, beside the PyTorch peer) and the predictor's latency. Importable on any machine; PyTorch is
used when it is installed."""

from __future__ import annotations

import os
import time

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np
import peers

import rockjax
from rockjax import bench

NUM_CLASSES = 4
STEPS_PER_RUN = 16  # train steps in one timed run of every contender


def net_config(net: str, dtype: str, batch: int, quick: bool):
  """configs/<net>.py on one device, at this dtype and global batch (smaller inputs if quick)."""
  quick_size = dict(data__image_size=32, model__widths=(8, 8, 8, 8)) if quick else {}
  # quick: CI-size, small inputs and a narrow net, so that compiling takes seconds
  return rockjax.config(os.path.join(_bootstrap.ROOT, 'configs', f'{net}.py'), model__dtype=dtype,
                        num_devices=1, batch_size=batch, eval_batch_size=batch,
                        data__where='device', augment__where='device',
                        data__device_memory_mb=1 << 20, **quick_size)


class Rockjax:
  """rockjax's own steps on one device: alone on device batches, and end to end (the device feed)."""

  def __init__(self, config):
    self.config = config
    self.rt = bench.make_runtime(config)
    size, self.batch = config.data.image_size, config.batch_size
    n = STEPS_PER_RUN * self.batch
    rng = np.random.default_rng(0)
    self.dataset = bench.in_memory_dataset(
        rng.integers(0, 256, (n + self.batch, size, size, 3), dtype=np.uint8),
        np.arange(n + self.batch) % NUM_CLASSES, num_val=self.batch,
        class_names=list('abcd'))

  def step_alone(self, k: int):
    """(run, compile seconds, FLOPs per step, parameters): K steps per dispatch on batches on the
    device, without augmentation."""
    step = bench.TrainStep(self.config, NUM_CLASSES, steps_per_call=k,
                           num_calls=STEPS_PER_RUN // k, count_flops=k == 1)
    return step.run, step.compile_seconds, step.flops, step.num_params

  def end_to_end(self, k: int):
    """(run, compile seconds): one epoch of STEPS_PER_RUN steps through the device-resident data
    path with the config's augmentation, K steps per dispatch."""
    config = self.config.copy_and_resolve_references()
    config.steps_per_dispatch = k
    runner = bench.EpochRunner(config, self.dataset, self.rt)
    return runner.run, runner.first_epoch_seconds


class Torch:
  """The same network in PyTorch: channels-last, bf16 autocast, torch.compile (unless quick)."""

  def __init__(self, config, compile_model: bool):
    import torch
    import torch.nn.functional as F
    self.torch = torch
    self.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    size, batch = config.data.image_size, config.batch_size
    model = peers.torch_model(config.model, NUM_CLASSES).to(self.device)
    model = model.to(memory_format=torch.channels_last)
    self.num_params = peers.torch_num_params(model)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, eps=config.adam_eps)
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=self.device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, NUM_CLASSES, (batch,), device=self.device)
    forward = torch.compile(model) if compile_model else model
    bf16 = config.model.dtype == 'bfloat16'

    def step():
      with torch.autocast(device_type=self.device, dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(forward(x.float()), y)
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
    self.step = step
    start = time.perf_counter()
    for _ in range(3):
      step()
    self.sync()
    self.compile_seconds = time.perf_counter() - start

  def sync(self):
    if self.device == 'cuda':
      self.torch.cuda.synchronize()

  def run(self):
    for _ in range(STEPS_PER_RUN):
      self.step()
    self.sync()


def measure_row(net: str, dtype: str, batch: int, quick: bool, peak_tflops) -> dict:
  config = net_config(net, dtype, batch, quick)
  jx = Rockjax(config)
  contenders, compile_seconds, flops = {}, {}, None
  # Quick (a CPU test): K=1 alone, and for EfficientNet, whose CPU compiles are slow, the step
  # without the feed (tests/training tests K steps a dispatch, and EfficientNet's feed).
  slow_compiles = quick and net == 'pretrained'
  for k in (1,) if quick else (1, 8):
    run, compile_seconds[f'step_k{k}'], f, num_params = jx.step_alone(k)
    contenders[f'step_k{k}'] = run
    flops = flops or f
    if not slow_compiles:
      run, compile_seconds[f'end_to_end_k{k}'] = jx.end_to_end(k)
      contenders[f'end_to_end_k{k}'] = run
  row = dict(net=net, config=f'configs/{net}.py', image_size=config.data.image_size,
             dtype=dtype, batch=batch, augment=config.augment.preset, flops_per_step=flops)
  try:
    import torch  # noqa: F401
    peer = Torch(config, compile_model=not quick)
    contenders['pytorch'] = peer.run
    compile_seconds['pytorch'] = peer.compile_seconds
    row['pytorch_num_params'] = peer.num_params
  except ImportError:
    row['pytorch'] = 'not installed'
  rates = bench.median_rates(contenders, 2 if quick else 3,
                       {name: STEPS_PER_RUN * batch for name in contenders})
  best_step = max(rates['step_k1'], rates[[k for k in rates if k.startswith('step_k')][-1]])
  best_e2e = max((v for k, v in rates.items() if k.startswith('end_to_end')), default=None)
  row.update(images_per_s=rates, compile_seconds=compile_seconds, num_params=num_params,
             end_to_end_vs_step=best_e2e / best_step if best_e2e else None)
  if flops:
    achieved = flops * best_step / batch / 1e12
    row.update(achieved_tflops=achieved, mfu=achieved / peak_tflops if peak_tflops else None)
  if 'pytorch' in rates:
    row['vs_pytorch'] = max(best_step, best_e2e or 0) / rates['pytorch']
  print(f'train {net} {dtype} batch {batch}: ' + ', '.join(f'{k} {v:,.0f}' for k, v in
                                                          rates.items())
        + f' img/s; MFU {row.get("mfu") or 0:.1%}', flush=True)
  return row


def predict_latency(quick: bool) -> dict:
  out = {}
  for net in ('rocks',) if quick else ('residual', 'rocks'):  # quick: one compile, for a test
    config = net_config(net, 'float32', 256, quick)
    size = config.data.image_size
    predictor = bench.fresh_predictor(config, list('abcd'))
    one = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    for _ in range(3):
      predictor.probabilities(one, batch_size=1)
    times = []
    for _ in range(50 if quick else 300):
      start = time.perf_counter()
      predictor.probabilities(one, batch_size=1)
      times.append(1000 * (time.perf_counter() - start))
    big_n = 64 if quick else 1024
    big = np.repeat(one, big_n, axis=0)
    predictor.probabilities(big, batch_size=big_n)
    start = time.perf_counter()
    for _ in range(3 if quick else 20):
      predictor.probabilities(big, batch_size=big_n)
    rate = (3 if quick else 20) * big_n / (time.perf_counter() - start)
    out[net] = dict(image_size=size, batch1_p50_ms=float(np.percentile(times, 50)),
                    batch1_p99_ms=float(np.percentile(times, 99)),
                    batched_images_per_s=rate, batch=big_n)
    print(f'predict {net} {size}px: p50 {out[net]["batch1_p50_ms"]:.2f} ms, p99 '
          f'{out[net]["batch1_p99_ms"]:.2f} ms, {rate:,.0f} img/s at batch {big_n}', flush=True)
  return out
