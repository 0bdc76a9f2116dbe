"""Fine-tuning: a new run starts from another run's best checkpoint (`init_from=WORKDIR`), or from
the weights shipped for its network (`model.pretrained=imagenet`, rockjax/pretrained/).

The source run's parameters and BatchNorm statistics (their moving averages when it kept them, as
its evaluation did) replace the fresh initialisation, parameter by parameter. The classifier head
(`Dense_0`) is kept when the two runs have the same classes in the same order, and re-initialised
otherwise. Every other parameter must exist in both with the same shape: a different architecture
is one ConfigError naming the first parameter that differs. The input size may differ (the
networks are fully convolutional up to a global average pool): pretraining at 32 px and
fine-tuning at 96 px is allowed, and logged.

The new run writes `init.json` (the source workdir, a hash of its config, the checkpoint's epoch,
the source classes, whether the head was kept, what is frozen) and needs nothing of the source
afterwards: resuming, eval, predict and export read only its own workdir. Freezing and the
learning-rate multiplier are applied by the optimiser (rockjax/training/optim.py).
"""

from __future__ import annotations

import hashlib
import json
import os

import jax
import numpy as np
from absl import logging
from flax import traverse_util

from rockjax import fileio, pretrained, schema
from rockjax.errors import ConfigError, NoCheckpointError, WorkdirError
from rockjax.training import checkpointing, optim, state as states


def _read_json(path: str, what: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f'config.init_from: cannot read the source run\'s {what} {path!r} '
                      f'({type(e).__name__}: {e})') from e


def load_source(workdir: str) -> dict:
  """The source run: its config, class names, inference variables and best checkpoint's epoch."""
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    hint = (' (a k-fold run: name one of its fold_* folders)'
            if os.path.isdir(os.path.join(workdir, 'fold_0')) else '')
    raise ConfigError(f'config.init_from: {workdir!r} is not a training run\'s workdir (no '
                      f'checkpoints/){hint}')
  config = schema.load(os.path.join(workdir, 'config.json'))
  class_names = _read_json(os.path.join(workdir, 'class_names.json'), 'class names')
  _, abstract = states.abstract_train_state(config, len(class_names))
  try:
    with checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True) as ckpt:
      epoch = ckpt.best_epoch()
      state, _ = ckpt.restore_best(abstract)
  except (NoCheckpointError, WorkdirError) as e:  # e.g. a run stopped before its first epoch
    raise ConfigError(f'config.init_from: {e}') from e
  with open(os.path.join(workdir, 'config.json'), 'rb') as f:
    config_hash = hashlib.sha256(f.read()).hexdigest()[:12]
  return dict(workdir=workdir, config=config, class_names=class_names, epoch=epoch,
              config_hash=config_hash,
              variables=jax.device_get(states.inference_variables(state)))


def _merged(target: dict, source: dict, what: str, keep_head: bool, source_dir: str) -> dict:
  """`target` with every leaf taken from `source` (the head only when keep_head)."""
  flat_t, flat_s = traverse_util.flatten_dict(target), traverse_util.flatten_dict(source)
  out = {}
  for path in sorted(set(flat_t) | set(flat_s)):
    name = '/'.join(path)
    if path[0] == optim.HEAD and not keep_head:
      if path in flat_t:
        out[path] = flat_t[path]
      continue
    if path not in flat_s or path not in flat_t:
      owner, other = ('this run', source_dir) if path not in flat_s else (source_dir, 'this run')
      raise ConfigError(f'config.init_from: {what} {name!r} exists in {owner}\'s model but not in '
                        f'{other}\'s: the architectures differ (compare config.model)')
    if np.shape(flat_t[path]) != np.shape(flat_s[path]):
      raise ConfigError(f'config.init_from: {what} {name!r} has shape {np.shape(flat_s[path])} '
                        f'in {source_dir} but {np.shape(flat_t[path])} here: the architectures '
                        'differ (compare config.model)')
    out[path] = np.asarray(flat_s[path], dtype=np.asarray(flat_t[path]).dtype)
  return traverse_util.unflatten_dict(out)


def _check_frozen(config, state) -> None:
  top_level = set(state.params)
  unknown = [m for m in optim.frozen_modules(config)
             if m not in top_level and m != optim.FREEZE_ALL]
  if unknown:
    raise ConfigError(f'config.init_freeze: {unknown} are not modules of this model; its '
                      f'top-level modules are {sorted(top_level)} (or \'{optim.FREEZE_ALL}\')')


def _with_variables(state, variables: dict, keep_head: bool, source: str):
  """`state` with the source's parameters and BatchNorm statistics (and their EMA copies)."""
  params = _merged(state.params, variables['params'], 'parameter', keep_head, source)
  batch_stats = _merged(state.batch_stats, variables['batch_stats'], 'BatchNorm statistic',
                        keep_head, source)
  state = state.replace(params=params, batch_stats=batch_stats)
  if state.ema_params is not None:
    state = state.replace(ema_params=jax.tree.map(np.copy, params),
                          ema_batch_stats=jax.tree.map(np.copy, batch_stats))
  return state


def check_weights(config, cache_dir: str) -> None:
  """Before a run claims its workdir: the shipped weights it starts from are there (converted into
  the cache now if they were not), or a DependencyError says what to install."""
  if config.model.pretrained:
    pretrained.load(config.model, cache_dir)


def initialise_pretrained(config, state, cache_dir: str):
  """(the fresh `state` with the network's shipped weights, model.pretrained, and the provenance
  record for init.json). The head is re-initialised for this run's classes."""
  _check_frozen(config, state)
  weights = pretrained.weights_file(config.model)
  state = _with_variables(state, pretrained.load(config.model, cache_dir), keep_head=False,
                          source=f'{config.model.pretrained} weights')
  record = dict(pretrained=config.model.pretrained, network=config.model.name,
                weights_distribution=weights.distribution, weights_sha256=weights.sha256,
                weights_classes=weights.classes, head='re-initialised',
                frozen=list(optim.frozen_modules(config)),
                lr_multiplier=config.init_lr_multiplier)
  logging.info('Starting from the %s weights of %s (%s); head re-initialised%s.',
               config.model.pretrained, config.model.name, weights.distribution,
               f'; frozen {record["frozen"]}' if record['frozen'] else '')
  return state, record


def initialise_from(config, state, class_names: list[str]):
  """(the fresh `state` with the source run's weights, the provenance record for init.json)."""
  source = load_source(config.init_from)
  _check_frozen(config, state)
  keep_head = list(source['class_names']) == list(class_names)
  state = _with_variables(state, source['variables'], keep_head, source['workdir'])
  src_size, size = source['config'].data.image_size, config.data.image_size
  record = dict(source_workdir=source['workdir'], source_config_hash=source['config_hash'],
                source_checkpoint_epoch=source['epoch'], source_class_names=source['class_names'],
                source_image_size=src_size, head='kept' if keep_head else 're-initialised',
                frozen=list(optim.frozen_modules(config)),
                lr_multiplier=config.init_lr_multiplier)
  logging.info('Fine-tuning from %s (best checkpoint, epoch %d; %d px, this run %d px): head %s%s.',
               source['workdir'], source['epoch'], src_size, size, record['head'],
               f'; frozen {record["frozen"]}' if record['frozen'] else '')
  return state, record


def write_record(workdir: str, record: dict) -> None:
  fileio.write_json(os.path.join(workdir, 'init.json'), record)
