"""Augmentation presets: what each does, how often, reproducibly; custom specs are parsed safely."""

import ml_collections
import numpy as np
import pytest

from rockjax import augment

IMG = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def augmenter(preset, custom=''):
  config = ml_collections.ConfigDict(dict(preset=preset, custom=custom))
  compose = augment.build_host_pipeline(config, 16)
  return augment.HostAugmenter(compose, 16) if compose else None


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
    augment.parse_custom(spec)


def test_unknown_preset_is_rejected():
  with pytest.raises(ValueError, match='is not one of'):
    augment.preset_transforms('rotate', 16)
