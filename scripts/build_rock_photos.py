"""Builds a class-per-folder tree of photos into the `rock_photos` TFDS dataset (offline).

    python scripts/build_rock_photos.py --photos=/path/to/photos --data_dir=/path/to/tfds

Then train on it with --config.data.tfds=rock_photos --config.data.tfds_data_dir=/path/to/tfds
(and --config.data.test_split=test for its duplicate-grouped test split). See
rockjax/datasets/rock_photos.py for what is stored and checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import _bootstrap  # noqa: F401  (the repository root on sys.path)

from rockjax import logs


def build(photos: str, data_dir: str) -> dict:
  """Prepares rock_photos from `photos` under `data_dir`; returns its report (the metadata)."""
  import tensorflow_datasets as tfds
  from rockjax.datasets import rock_photos
  if not os.path.isdir(photos):
    raise SystemExit(f'error: --photos={photos!r} is not a folder')
  builder = rock_photos.RockPhotos(data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.path.abspath(photos)))
  info = builder.info
  return dict(data_dir=os.path.abspath(data_dir), version=str(info.version),
              splits={name: split.num_examples for name, split in info.splits.items()},
              classes=info.features['label'].names, **dict(info.metadata))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--photos', required=True, help='folder with one sub-folder per class')
  parser.add_argument('--data_dir', required=True, help='where the prepared dataset goes')
  args = parser.parse_args(argv)
  logs.quiet_libraries()
  report = build(args.photos, args.data_dir)
  skipped = report.get('skipped', [])
  print(json.dumps({k: v for k, v in report.items() if k != 'skipped'}, indent=2))
  print(f'{len(skipped)} file(s) skipped' + (': ' + ', '.join(
      f'{s["path"]} ({s["reason"]})' for s in skipped[:20]) if skipped else ''))
  return 0


if __name__ == '__main__':
  sys.exit(main())
