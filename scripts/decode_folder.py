"""Decode a class-per-folder photo set once, with a config's preprocessing, into one .npz file.

    python scripts/decode_folder.py --config=configs/rocks.py \
        --config.data.dir=/path/to/photos --out=photos_96px.npz

Training with --config.data.dir=photos_96px.npz (and the same preprocessing settings) then uses the
same images and the same duplicate groups as the folder, hence the same splits and folds for the
same seed, on a machine that has only the file: a GPU machine, for instance, where the photos do
not travel (rockjax/data/decoded.py). The file holds the images as uint8 (compressed).
From Python: `rockjax.decode_folder(config, out)`.
"""

from __future__ import annotations

import os
import sys

import _bootstrap  # noqa: F401  (the repository root on sys.path)
from absl import app, flags
from ml_collections import config_flags

import rockjax
from rockjax import cli, logs
from rockjax.errors import UserError

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined when run as a script, not when imported)."""
  config_flags.DEFINE_config_file('config', None, 'Config file whose data section decodes the set.',
                                  lock_config=True)
  flags.DEFINE_string('out', None, 'The .npz file to write.')
  flags.mark_flags_as_required(['config', 'out'])


def main(argv):
  del argv
  logs.quiet_libraries()
  try:
    image_set = rockjax.decode_folder(FLAGS.config, FLAGS.out)
  except UserError as e:
    return cli.user_error_status(e)
  print(f'{len(image_set)} images of {len(image_set.class_names)} classes '
        f'({image_set.images.nbytes / 2**20:.1f} MiB decoded) in {FLAGS.out} '
        f'({os.path.getsize(FLAGS.out) / 2**20:.1f} MiB)')
  return 0


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=cli.parse_flags)
