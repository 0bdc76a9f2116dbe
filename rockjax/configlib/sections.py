"""A config assembled from sections, each owned by the subsystem it configures.

A `Section` is a name (`''` for the top-level fields), a function returning its defaults (one
documented line per field, in the subsystem's own `section.py`) and a validator. configlib imports
no subsystem: rockjax/schema.py lists the sections in order and hands them to `assemble` and
`validate` here.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import ml_collections

from rockjax.configlib.files import flatten
from rockjax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Section:
  name: str  # the config key it fills; '' for top-level fields
  defaults: Callable[[], dict | ml_collections.ConfigDict]
  validate: Callable[[ml_collections.ConfigDict], None]  # raises ConfigError naming the key
  # Fields a config file may leave unset (None) in some cases: key -> (whether None is fine in
  # this config, a hint for the error when it is not).
  unset: dict[str, tuple[Callable[[ml_collections.ConfigDict], bool], str]] = dataclasses.field(
      default_factory=dict)
  # For docs/config.md (reference.py): where the fields' comments are (default: `defaults`), and
  # descriptions of fields set without a comment line (key -> text).
  sources: tuple = ()
  docs: Callable[[], dict[str, str]] | None = None


def assemble(sections) -> ml_collections.ConfigDict:
  """One ConfigDict holding every section's defaults; two sections may not claim one key."""
  config = ml_collections.ConfigDict()
  for section in sections:
    fields = section.defaults()
    if section.name:
      fields = {section.name: fields}
    for key, value in fields.items():
      if key in config:
        raise ValueError(f'config.{key} is claimed by two sections (the second: '
                         f'{section.name or "top level"!r})')
      config[key] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
  return config


def check_required(config, sections=()) -> None:
  """A config file may leave a field to the command line (`config_dict.placeholder`: None until
  set): configs/finetune.py's init_from, configs/pretrain.py's data.dir (or data.tfds)."""
  unset = {}
  for section in sections:
    unset.update({f'{section.name}.{k}' if section.name else k: v
                  for k, v in section.unset.items()})
  for key, value in flatten(config.to_dict()).items():
    if value is None:
      fine, hint = unset.get(key, (lambda c: False, ''))
      if not fine(config):
        raise ConfigError(f'config.{key}: this config needs it set on the command line: '
                          f'--config.{key}=...{hint}; its docstring says what it is')


def validate(config, sections) -> None:
  """Raises ConfigError naming the first key whose value cannot work, section by section."""
  check_required(config, sections)
  for section in sections:
    section.validate(config)
