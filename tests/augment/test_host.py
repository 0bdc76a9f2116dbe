"""Host (Albumentations) presets: what each does, how often, reproducibly; custom specs are parsed
safely."""

import numpy as np
import pytest

from rockjax import schema
from rockjax.augment import host, presets

IMG = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def augmenter(preset, custom='', **knobs):
  """A HostAugmenter for `preset`, with the base config's augment settings unless overridden."""
  config = schema.base_config().augment
  config.update(dict(preset=preset, custom=custom, **knobs))
  return presets.host_augmenter(config, 16)


def outcomes(aug, n=400):
  """Fractions of: unchanged, h-flip, v-flip, both flips (exact pixel matches)."""
  res = []
  for seed in range(n):
    out = aug(IMG, seed)
    assert out.shape == IMG.shape and out.dtype == np.uint8
    res.append([np.array_equal(out, v) for v in (IMG, IMG[:, ::-1], IMG[::-1], IMG[::-1, ::-1])])
  return np.mean(res, axis=0)


def test_none_preset_builds_nothing():
  assert augmenter('none') is None


def test_flip_preset_draws_the_two_flips_independently():
  fractions = outcomes(augmenter('flip'))
  np.testing.assert_allclose(fractions, 0.25, atol=0.07)


def test_flip_bright_changes_brightness_half_the_time_and_never_the_geometry():
  fractions = outcomes(augmenter('flip_bright'))
  # Brightness (p=0.5) breaks exact matches half the time; flips stay independent.
  assert fractions.sum() == pytest.approx(0.5, abs=0.08)
  np.testing.assert_allclose(fractions, 0.125, atol=0.06)


def test_crop_preset_keeps_the_size_and_moves_content():
  aug = augmenter('crop')
  outs = [aug(IMG, s) for s in range(50)]
  assert all(o.shape == IMG.shape for o in outs)
  assert len({o.tobytes() for o in outs}) > 10


def dihedral(image):
  """The 8 flips and rotations of an image, as bytes."""
  return {np.rot90(v, k).tobytes() for v in (image, image[:, ::-1]) for k in range(4)}


def test_strong_preset_with_every_knob_off_keeps_only_the_flips():
  aug = augmenter('strong', crop_min_scale=1.0, rotate90=False, colour_jitter=0.0)
  np.testing.assert_allclose(outcomes(aug), 0.25, atol=0.07)


def test_strong_rotate90_reaches_all_eight_flips_and_rotations():
  aug = augmenter('strong', crop_min_scale=1.0, rotate90=True, colour_jitter=0.0)
  outs = {aug(IMG, s).tobytes() for s in range(200)}
  assert outs == dihedral(IMG)


def test_strong_colour_jitter_changes_colours_but_not_the_geometry():
  aug = augmenter('strong', crop_min_scale=1.0, rotate90=False, colour_jitter=0.2)
  views = [IMG, IMG[:, ::-1], IMG[::-1], IMG[::-1, ::-1]]
  changed = 0
  for seed in range(100):
    out = aug(IMG, seed).astype(int)
    # Closest flip view: jitter rescales intensities, so the correlation stays high.
    corr = max(np.corrcoef(out.ravel(), v.astype(int).ravel())[0, 1] for v in views)
    assert corr > 0.9
    changed += not any(np.array_equal(out, v) for v in views)
  assert 65 <= changed <= 95  # p = 0.8


def test_strong_crop_is_the_only_part_that_resamples():
  cropped = augmenter('strong', crop_min_scale=0.35, rotate90=False, colour_jitter=0.0)
  outs = [cropped(IMG, s) for s in range(40)]
  assert sum(o.tobytes() not in dihedral(IMG) for o in outs) >= 35


def test_strong_defaults_are_the_preset():
  default = augmenter('strong')
  transforms = host.strong(presets.spec_with_defaults('strong'), 16)
  assert [type(t).__name__ for t in transforms] == [
      'RandomResizedCrop', 'HorizontalFlip', 'VerticalFlip', 'RandomRotate90', 'ColorJitter']
  explicit = augmenter('strong', crop_min_scale=0.35, rotate90=True, colour_jitter=0.2)
  no_config = host.HostAugmenter(host.compose(transforms), 16)
  for seed in range(5):
    np.testing.assert_array_equal(default(IMG, seed), explicit(IMG, seed))
    np.testing.assert_array_equal(default(IMG, seed), no_config(IMG, seed))


def test_same_seed_same_output_different_seed_different_output():
  aug = augmenter('flip_bright')
  np.testing.assert_array_equal(aug(IMG, 123), aug(IMG, 123))
  assert len({aug(IMG, s).tobytes() for s in range(20)}) > 4


def test_custom_spec_builds_the_named_transforms():
  aug = augmenter('custom', 'RandomRotate90(p=1.0); HorizontalFlip(p=0.0)')
  rotations = {np.rot90(IMG, k).tobytes() for k in range(4)}
  outs = {aug(IMG, s).tobytes() for s in range(40)}
  assert outs <= rotations and len(outs) >= 3


def test_custom_size_changing_transform_is_resized_back():
  aug = augmenter('custom', 'RandomCrop(height=10, width=10)')
  assert aug(IMG, 0).shape == (16, 16, 3)


@pytest.mark.parametrize('spec,message', [
    ('NotATransform(p=1)', 'is not an Albumentations transform'),
    ('__import__("os").system("true")', 'must look like TransformName'),
    ('HorizontalFlip(p=os.getcwd())', 'must be Python literals'),
    ('HorizontalFlip(p=2.0)', 'was rejected'),
    ('', 'needs at least one transform'),
])
def test_bad_custom_specs_are_rejected(spec, message):
  with pytest.raises((ValueError, SyntaxError), match=message):
    host.parse_custom(spec)


def test_unknown_preset_is_rejected():
  with pytest.raises(ValueError, match='is not one of'):
    presets.make_spec('rotate')
