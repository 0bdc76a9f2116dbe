"""A finished run's own config (its workdir's config.json), for the modes that come after training.

    python main.py --mode=eval --workdir=runs/rocks-1a2b3c4d
    python main.py --mode=export --workdir=W --config.export.formats=saved_model,tflite

Without --config, --mode=eval, predict, export and preview read this file with the run's workdir
(main.py adds `--config=configs/run.py:W`), so every --config.<key> override applies on top of what
the run was trained with.
"""

import os

from rockjax import schema
from rockjax.errors import ConfigError


def get_config(workdir: str = ''):
  path = os.path.join(workdir, 'config.json')
  if not workdir or not os.path.exists(path):
    raise ConfigError(f'{workdir or "(no --workdir)"!r} holds no training run (no config.json); '
                      'name a run with --workdir, or give --config')
  return schema.load(path)
