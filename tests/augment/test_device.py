"""Device-side augmentation: shapes and ranges, per-example randomness with the host presets'
probabilities, determinism per key, and training with it."""

import jax
import numpy as np
import pytest

from rockjax import configlib, schema
from rockjax.augment import device, presets
from rockjax.training import loop
from helpers import tiny_config

N = 2000
IMG = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
BATCH = np.repeat(IMG[None], N, axis=0)
X = IMG.astype(np.float32) / 255.0


def run(preset, seed=0):
  """The preset (a name: knobs at the table's defaults; or a Spec) on BATCH, jitted."""
  spec = presets.spec_with_defaults(preset) if isinstance(preset, str) else preset
  out = jax.jit(presets.augment_on_device, static_argnums=2)(jax.random.PRNGKey(seed), BATCH, spec)
  return np.asarray(out)


def strong(**knobs):
  return presets.make_spec('strong', **knobs)


@pytest.mark.parametrize('preset', presets.DEVICE_PRESETS)
def test_shape_dtype_range_and_determinism(preset):
  out = run(preset)
  assert out.shape == BATCH.shape and out.dtype == np.float32
  assert out.min() >= 0.0 and out.max() <= 1.0
  np.testing.assert_array_equal(out, run(preset))
  if preset != 'none':
    assert not np.array_equal(out, run(preset, seed=1))


def outcome_fractions(out):
  views = (X, X[:, ::-1], X[::-1], X[::-1, ::-1])
  return np.array([np.mean([np.allclose(o, v, atol=1e-6) for o in out]) for v in views])


def test_flip_draws_both_flips_independently_per_example():
  np.testing.assert_allclose(outcome_fractions(run('flip')), 0.25, atol=0.04)


def test_flip_bright_changes_brightness_half_the_time():
  out = run('flip_bright')
  fractions = outcome_fractions(out)
  assert fractions.sum() == pytest.approx(0.5, abs=0.05)
  np.testing.assert_allclose(fractions, 0.125, atol=0.03)
  shift = out.mean(axis=(1, 2, 3)) - X.mean()
  moved = np.abs(shift) > 1e-4
  assert np.abs(shift[moved]).max() <= 0.25 + 1e-6


def test_crop_draws_many_positions_and_flips():
  crop = run('crop')
  # 16 px -> 20 px: 5 x 5 crop positions, each unflipped or flipped one of two ways.
  assert 50 < len({o.tobytes() for o in crop}) <= 75
  assert np.mean([np.allclose(o, X, atol=1e-6) for o in crop]) < 0.05  # always a crop


def test_rot90_draws_every_quarter_turn():
  out = np.asarray(jax.jit(device._rot90)(jax.random.PRNGKey(0), BATCH / 255.0))
  turns = [np.mean([np.allclose(o, np.rot90(X, k), atol=1e-6) for o in out]) for k in range(4)]
  np.testing.assert_allclose(turns, [0.5 + 0.125, 0.125, 0.125, 0.125], atol=0.04)


def test_strong_spec_with_every_knob_off_keeps_only_the_flips():
  out = run(strong(crop_min_scale=1.0, rotate90=False, colour_jitter=0.0))
  np.testing.assert_allclose(outcome_fractions(out), 0.25, atol=0.04)


def test_strong_spec_rotations_without_crop_or_colour_stay_exact_dihedral_views():
  out = run(strong(crop_min_scale=1.0, rotate90=True, colour_jitter=0.0))
  views = [np.rot90(v, k) for v in (X, X[:, ::-1]) for k in range(4)]
  hits = np.array([[np.allclose(o, v, atol=1e-6) for v in views] for o in out[:400]])
  assert hits.any(axis=1).all() and hits.any(axis=0).all()


def test_strong_spec_knobs_change_the_output_and_defaults_match_the_preset_name():
  preset = strong(crop_min_scale=0.35, rotate90=True, colour_jitter=0.2)
  np.testing.assert_array_equal(run('strong'), run(preset))
  assert not np.allclose(run('strong'),
                         run(strong(crop_min_scale=0.35, rotate90=True, colour_jitter=0.0)))


def test_spec_from_config_follows_where_and_the_knobs():
  config = tiny_config()
  config.augment.preset = 'strong'
  assert presets.device_spec(config.augment) is None  # host path
  config.augment.where = 'device'
  config.augment.rotate90 = False
  config.augment.crop_min_scale = 0.5
  assert presets.device_spec(config.augment) == strong(crop_min_scale=0.5, rotate90=False,
                                                       colour_jitter=0.2)
  config.augment.preset = 'flip'  # the strong knobs are not part of another preset's spec
  assert presets.device_spec(config.augment) == presets.Spec('flip', ())
  config.augment.preset = 'none'
  assert presets.device_spec(config.augment) is None


def test_custom_preset_cannot_run_on_device():
  config = tiny_config()
  config.augment.where = 'device'
  config.augment.preset = 'custom'
  config.augment.custom = 'HorizontalFlip(p=0.5)'
  with pytest.raises(configlib.ConfigError, match='no device implementation'):
    schema.validate(config)


def test_training_with_device_augmentation(tmp_path):
  config = tiny_config(num_epochs=2, augment__where='device', augment__preset='crop')
  summary = loop.train_and_evaluate(config, str(tmp_path))
  assert summary['epochs'] == 2 and 0.0 <= summary['best_val_accuracy'] <= 1.0
