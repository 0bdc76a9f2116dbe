"""Mixup and CutMix: convex pairs of images with matching soft targets, Beta-distributed weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rockjax.augment import mixing
from rockjax.training import steps

N, H, W, K = 16, 12, 12, 5


def batch(seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8)
  labels = rng.permutation(np.arange(N) % K).astype(np.int32)
  return images, labels


def partners(x, mixed, lam):
  """For mixup: the index j with mixed_i = lam x_i + (1 - lam) x_j, for every i."""
  found = []
  for i in range(N):
    other = (mixed[i] - lam * x[i]) / (1.0 - lam)
    errors = np.abs(x - other[None]).reshape(N, -1).max(1)
    found.append(int(np.argmin(errors)))
    assert errors.min() < 1e-4
  return found


def test_disabled_is_one_hot_and_unit_range():
  images, labels = batch()
  x, targets, lam = mixing.mix_batch(jax.random.PRNGKey(0), images, labels, K)
  np.testing.assert_allclose(x, images / 255.0, atol=1e-7)
  np.testing.assert_array_equal(targets, np.eye(K)[labels])
  assert float(lam) == 1.0


def test_mixup_blends_each_image_with_a_permuted_partner_and_its_label():
  images, labels = batch()
  x = images / 255.0
  for seed in range(3):
    mixed, targets, lam = mixing.mix_batch(jax.random.PRNGKey(seed), images, labels, K,
                                           mixup_alpha=1.0)
    mixed, targets, lam = np.asarray(mixed), np.asarray(targets), float(lam)
    assert 0.0 < lam < 1.0
    partner = partners(x, mixed, lam)
    assert sorted(partner) == list(range(N))  # a permutation of the batch
    expected = lam * np.eye(K)[labels] + (1 - lam) * np.eye(K)[labels[partner]]
    np.testing.assert_allclose(targets, expected, atol=1e-6)
    np.testing.assert_allclose(targets.sum(1), 1.0, atol=1e-6)


def test_cutmix_pastes_one_box_and_weights_labels_by_its_area():
  images, labels = batch()
  x = images / 255.0
  seen_partial = False
  for seed in range(6):
    mixed, targets, lam = mixing.mix_batch(jax.random.PRNGKey(seed), images, labels, K,
                                           cutmix_alpha=1.0)
    mixed, targets, lam = np.asarray(mixed), np.asarray(targets), float(lam)
    box = np.any(np.abs(mixed - x) > 1e-6, axis=-1)  # pixels not from the image itself
    # The box is the same rectangle for every image of the batch (one lam per share) ...
    union = box.any(0)
    if union.any():
      ys, xs = np.nonzero(union)
      rect = np.zeros_like(union)
      rect[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
      np.testing.assert_array_equal(union, rect)
      seen_partial = seen_partial or 0 < union.mean() < 1
    # ... each pixel comes from the image or from its partner, and lam is the kept fraction.
    assert lam == pytest.approx(1.0 - union.mean(), abs=1e-6)
    for i in range(N):
      src = [j for j in range(N) if np.allclose(mixed[i][union], x[j][union])]
      assert src, 'box pixels must come from one partner image'
      j = src[0]
      expected = lam * np.eye(K)[labels[i]] + (1 - lam) * np.eye(K)[labels[j]]
      np.testing.assert_allclose(targets[i], expected, atol=1e-6)
      np.testing.assert_allclose(mixed[i][~union], x[i][~union], atol=1e-7)
  assert seen_partial


@pytest.mark.parametrize('alpha', [0.2, 1.0])
def test_mixup_weight_follows_beta(alpha):
  images, labels = batch()
  lams = np.array([float(mixing.mix_batch(jax.random.PRNGKey(s), images[:2], labels[:2], K,
                                          mixup_alpha=alpha)[2]) for s in range(400)])
  assert lams.mean() == pytest.approx(0.5, abs=0.05)
  assert lams.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.2)  # Beta(a, a) variance


def test_both_alphas_choose_each_method_about_half_the_time():
  images, labels = batch()
  x = images / 255.0
  cutmix_steps = 0
  for s in range(200):
    mixed, _, lam = mixing.mix_batch(jax.random.PRNGKey(s), images, labels, K, mixup_alpha=1.0,
                                     cutmix_alpha=1.0)
    mixed = np.asarray(mixed)
    # Cutmix leaves the pixels outside the box exactly as they were (a fraction lam of each
    # image); mixup changes all but the ~1/256 of values where two random images agree.
    untouched = np.mean(np.abs(mixed - x) < 1e-7, axis=(1, 2, 3))
    cutmix_steps += bool(np.median(untouched) > 0.05)
  assert 70 <= cutmix_steps <= 130


def test_soft_target_cross_entropy_is_the_weighted_sum_of_the_two_labels():
  logits = jnp.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
  lam = 0.3
  a, b = np.array([0, 2]), np.array([1, 2])
  soft = lam * np.eye(3)[a] + (1 - lam) * np.eye(3)[b]
  expected = lam * steps.cross_entropy(logits, a) + (1 - lam) * steps.cross_entropy(logits, b)
  np.testing.assert_allclose(steps.cross_entropy(logits, jnp.asarray(soft)), expected, rtol=1e-6)


def test_box_area_matches_lam_away_from_the_border():
  box = mixing.cutmix_box(jax.random.PRNGKey(0), jnp.float32(0.75), 100, 100)
  # centre drawn anywhere: the clipped box covers at most 1 - lam, and is a rectangle
  assert 0 < float(box.mean()) <= 0.25 + 0.02
