"""The preset table is the one source: the config's knobs, validation, and both implementations
come from it, and a Spec carries exactly its preset's knobs."""

import dataclasses

import jax
import numpy as np
import pytest

from rockjax import configlib, schema
from rockjax.augment import device, host, presets
from helpers import tiny_config

IMG = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)


@pytest.mark.parametrize('name', [n for n in presets.PRESETS if n != 'custom'])
def test_every_preset_has_a_host_implementation_that_builds(name):
  transforms = presets.PRESETS[name].host(presets.spec_with_defaults(name), 16)
  assert isinstance(transforms, list) and (transforms or name == 'none')


@pytest.mark.parametrize('name', presets.DEVICE_PRESETS)
def test_every_device_preset_keeps_shape_and_range(name):
  out = presets.augment_on_device(jax.random.PRNGKey(0), IMG, presets.spec_with_defaults(name))
  assert out.shape == IMG.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_custom_is_host_only_and_the_device_list_comes_from_the_table():
  assert presets.PRESETS['custom'].device is None
  assert presets.DEVICE_PRESETS == tuple(n for n, p in presets.PRESETS.items() if p.device)
  with pytest.raises(ValueError, match='no device implementation'):
    presets.augment_on_device(jax.random.PRNGKey(0), IMG, presets.make_spec('custom', custom=''))


def test_base_config_holds_every_knob_at_the_tables_default():
  augment = schema.base_config().augment
  for knob in presets.all_knobs():
    assert augment[knob.name] == knob.default, knob.name
  assert augment.preset in presets.PRESETS and augment.where in presets.WHERE


def test_validation_reads_the_table(monkeypatch):
  mirror = presets.Preset('mirror', 'left-right mirror, always', host.flips, device.flips)
  config = tiny_config()
  config.augment.preset = 'mirror'
  with pytest.raises(configlib.ConfigError, match=r"config.augment.preset: 'mirror' is not one of"):
    schema.validate(config)
  monkeypatch.setitem(presets.PRESETS, 'mirror', mirror)
  schema.validate(config)  # a preset added to the table is valid at once


def test_knob_ranges_come_from_the_table():
  config = tiny_config()
  config.augment.crop_min_scale = 0.0
  with pytest.raises(configlib.ConfigError,
                     match=r'config.augment.crop_min_scale: must be in \(0, 1\]'):
    schema.validate(config)


def test_a_spec_carries_exactly_its_presets_knobs():
  strong = presets.make_spec('strong', crop_min_scale=0.5, rotate90=False, colour_jitter=0.1)
  assert strong['crop_min_scale'] == 0.5 and hash(strong) == hash(
      presets.make_spec('strong', crop_min_scale=0.5, rotate90=False, colour_jitter=0.1))
  with pytest.raises(ValueError, match='takes the knobs'):
    presets.make_spec('strong', crop_min_scale=0.5)  # no hidden defaults
  with pytest.raises(ValueError, match='takes the knobs'):
    presets.make_spec('flip', rotate90=True)
  with pytest.raises(KeyError, match='has no knob'):
    presets.make_spec('flip')['rotate90']
  config = tiny_config(augment__preset='flip', augment__crop_min_scale=0.9)
  assert presets.spec_from_config(config.augment) == presets.Spec('flip', ())
  assert dataclasses.is_dataclass(strong)


def test_a_huge_custom_recipe_is_refused_with_a_short_message():
  config = tiny_config(augment__preset='custom', augment__custom='HorizontalFlip(p=0.5)')
  config.augment.custom = 'HorizontalFlip(p=0.5); ' * 5000
  with pytest.raises(configlib.ConfigError, match='at most 2,000 characters') as error:
    schema.validate(config)
  assert len(str(error.value)) < 200
