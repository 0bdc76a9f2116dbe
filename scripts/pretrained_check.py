"""Does the ported network see ImageNet classes in real photos? CIFAR-10 test photos, upscaled,
scored against the ImageNet synsets that each CIFAR-10 class maps to; and which input scaling the
weights expect.

    python scripts/pretrained_check.py [--per_class=50] [--json=results/pretrained_check.json]

For each CIFAR-10 class with ImageNet counterparts (airplane -> airliner, warplane, wing; ship ->
container ship, liner, fireboat, ...; all 118 dog breeds for dog; ... deer has none and is left
out), a photo is a top-1 (top-5) hit when a mapped synset is the network's first (among its first
five) ImageNet classes. Chance is the mapped synsets' share of the 1,000 classes (0.3% for airplane,
11.8% for dog). Each candidate input scaling is scored the same way; the best is the one the
network uses (rockjax/models/efficientnet.py). Blurry 32 px photos upscaled to 224 cap these
figures: they are not ImageNet accuracies. The ImageNet class order (sorted synset ids) is read from
tensorflow-datasets' imagenet2012 labels.txt, which ships with it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import _bootstrap  # noqa: F401  (the repository root on sys.path)
import numpy as np

# CIFAR-10 class -> WordNet synsets of ImageNet-1k classes that show it (a dog or bird: every
# breed or species, by index range in the sorted synset list).
SYNSETS = {
    'airplane': ['n02690373', 'n04552348', 'n04592741'],  # airliner, warplane, wing
    'automobile': ['n04285008', 'n03100240', 'n02930766', 'n02814533', 'n03670208', 'n03770679',
                   'n03594945', 'n04037443', 'n03777568', 'n03459775', 'n02974003'],
    # sports car, convertible, cab, beach wagon, limousine, minivan, jeep, racer, Model T, grille,
    # car wheel
    'bird': [(7, 24), (80, 100), (127, 146)],  # cock .. great grey owl, black grouse .. black
    # swan, white stork .. albatross
    'cat': ['n02123045', 'n02123159', 'n02123394', 'n02123597', 'n02124075'],
    # tabby, tiger cat, Persian, Siamese, Egyptian cat
    'dog': [(151, 268)],  # Chihuahua .. Mexican hairless
    'frog': ['n01641577', 'n01644373', 'n01644900'],  # bullfrog, tree frog, tailed frog
    'horse': ['n02389026', 'n03538406'],  # sorrel, horse cart
    'ship': ['n03095699', 'n03673027', 'n03344393', 'n02687172', 'n03662601', 'n04273569',
             'n04147183', 'n03947888', 'n04606251', 'n04612504', 'n04347754', 'n02981792',
             'n04483307'],
    # container ship, liner, fireboat, aircraft carrier, lifeboat, speedboat, schooner, pirate,
    # wreck, yawl, submarine, catamaran, trimaran
    'truck': ['n04467665', 'n03796401', 'n03930630', 'n03345487', 'n03417042', 'n04461696',
              'n03977966'],
    # trailer truck, moving van, pickup, fire engine, garbage truck, tow truck, police van
}
SCALINGS = {  # name: (mean, std) of [0, 255] pixels
    '(x - 127) / 128 (TF-Lite)': (127.0, 128.0),
    'ImageNet mean/std': (np.array([0.485, 0.456, 0.406]) * 255,
                          np.array([0.229, 0.224, 0.225]) * 255),
    '[0, 1]': (0.0, 255.0),
    '[-1, 1]': (127.5, 127.5),
}


def imagenet_synsets() -> list[str]:
  import tensorflow_datasets
  path = os.path.join(os.path.dirname(tensorflow_datasets.__file__), 'datasets', 'imagenet2012',
                      'labels.txt')
  with open(path) as f:
    return f.read().split()


def class_indices(synsets: list[str]) -> dict[str, np.ndarray]:
  """CIFAR-10 class -> indices of its ImageNet classes."""
  out = {}
  for cls, entries in SYNSETS.items():
    idx = []
    for e in entries:
      idx += list(range(e[0], e[1] + 1)) if isinstance(e, tuple) else [synsets.index(e)]
    out[cls] = np.asarray(sorted(set(idx)))
  return out


def load_photos(root: str, classes, per_class: int, size: int) -> dict[str, np.ndarray]:
  from PIL import Image
  out = {}
  for cls in classes:
    names = sorted(os.listdir(os.path.join(root, cls)))[:per_class]
    out[cls] = np.stack([np.asarray(Image.open(os.path.join(root, cls, n)).convert('RGB').resize(
        (size, size), Image.BICUBIC)) for n in names])
  return out


def hit_rates(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
  top5 = np.argsort(-logits, axis=-1)[:, :5]
  top1 = np.isin(top5[:, 0], targets).mean()
  return float(top1), float(np.isin(top5, targets).any(axis=1).mean())


def score(model_name: str, photos: dict, indices: dict, mean, std) -> dict:
  from rockjax.bench import studied
  apply, variables, num_classes = studied.imagenet_network(model_name, scaling=(mean, std))
  rows = {}
  for cls, images in photos.items():
    logits = studied.logits_in_batches(apply, variables, images, 25)
    top1, top5 = hit_rates(logits, indices[cls])
    rows[cls] = dict(photos=len(images), top1=top1, top5=top5,
                     chance_top1=len(indices[cls]) / num_classes)
  n = sum(r['photos'] for r in rows.values())
  return dict(per_class=rows, top1=sum(r['top1'] * r['photos'] for r in rows.values()) / n,
              top5=sum(r['top5'] * r['photos'] for r in rows.values()) / n,
              chance_top1=float(np.mean([r['chance_top1'] for r in rows.values()])))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--cifar', default=os.path.join(_bootstrap.ROOT, '..', 'shared', 'data',
                                                      'cifar10', 'test'))
  parser.add_argument('--per_class', type=int, default=50)
  parser.add_argument('--models', default='EfficientNetLite0,EfficientNetLite1,EfficientNetLite2')
  parser.add_argument('--json', default='')
  args = parser.parse_args()
  if not os.path.isdir(args.cifar):
    print(f'error: {args.cifar} is not a folder of CIFAR-10 test photos', file=sys.stderr)
    return 2
  from rockjax.bench import studied
  indices = class_indices(imagenet_synsets())
  results = dict(date=datetime.date.today().isoformat(), photos_per_class=args.per_class,
                 source=os.path.abspath(args.cifar), upscaling='bicubic', models={})
  for name in args.models.split(','):
    size = studied.native_size(name)
    photos = load_photos(args.cifar, SYNSETS, args.per_class, size)
    scalings = SCALINGS if name == 'EfficientNetLite0' else dict(list(SCALINGS.items())[:1])
    results['models'][name] = dict(size=size, scalings={})
    for label, (mean, std) in scalings.items():
      r = score(name, photos, indices, mean, std)
      results['models'][name]['scalings'][label] = r
      print(f'{name} {size}px {label:<26} top-1 {r["top1"]:.1%} top-5 {r["top5"]:.1%} '
            f'(chance top-1 {r["chance_top1"]:.1%}): '
            + ', '.join(f'{c} {v["top1"]:.0%}/{v["top5"]:.0%}' for c, v in r['per_class'].items()),
            flush=True)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=2)
  return 0


if __name__ == '__main__':
  sys.exit(main())
