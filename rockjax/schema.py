"""The config's sections, in order, each owned by the subsystem it configures; `base_config()`
assembles their defaults and `validate()` runs their validators.

| section | defaults and validator |
|---|---|
| top level: the run, optimiser, schedule, fine-tuning, cached features, label screen | rockjax/training/section.py |
| `model` (shared fields, then each registered network's own) | rockjax/models/section.py |
| `data` | rockjax/data/section.py |
| `augment` | rockjax/augment/section.py |
| `eval`, `predict`, `export`, `preview` | rockjax/serving/section.py |

Every `configs/*.py` starts from `base_config()`. The config is validated once, where it enters: the
command line (rockjax/cli.py) or the Python API (rockjax/api.py). Saved configs are read back with
`load()`, which fills fields added to rockjax since with their defaults.
"""

from __future__ import annotations

import ml_collections

from rockjax import configlib
from rockjax.augment import presets
from rockjax.augment import section as augment_section
from rockjax.configlib.sections import Section
from rockjax.data import section as data_section
from rockjax.models import efficientnet, residual, seed
from rockjax.models import section as model_section
from rockjax.serving import section as serving_section
from rockjax.training import section as training_section

SECTIONS = (
    Section('', training_section.defaults, training_section.validate,
            sources=(training_section,)),
    Section('model', model_section.defaults, model_section.validate,
            sources=(model_section, residual, seed, efficientnet),
            docs=lambda: {'name': 'the network, one of the registered ones: ' + ', '.join(
                model_section.registry.names()) + ' (rockjax/models/__init__.py)'}),
    Section('data', data_section.defaults, data_section.validate, unset=data_section.UNSET),
    Section('augment', augment_section.defaults, augment_section.validate,
            docs=lambda: {k.name: k.doc for k in presets.all_knobs()}),
    Section('eval', serving_section.eval_defaults, serving_section.validate_eval),
    Section('predict', serving_section.predict_defaults, serving_section.validate_predict),
    Section('export', serving_section.export_defaults, serving_section.validate_export),
    Section('preview', serving_section.preview_defaults, serving_section.validate_preview),
)


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by all configs; they reproduce the reference residual recipe."""
  return configlib.sections.assemble(SECTIONS)


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first key whose value cannot work, before anything runs."""
  configlib.sections.validate(config, SECTIONS)


def reference() -> str:
  """docs/config.md: every field, its default and its description (configlib/reference.py)."""
  return configlib.reference.markdown(SECTIONS, base_config())


def with_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config` plus every field of base_config() that it lacks, at the default value."""
  return configlib.merged(base_config(), config)


def load(path: str) -> ml_collections.ConfigDict:
  """A saved config, with any field added to rockjax since it was saved set to its default (which
  is how the run behaved: new fields default to the old behaviour)."""
  return with_defaults(configlib.read(path))
