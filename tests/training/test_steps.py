"""pmap train/eval steps: 1 vs 8 devices, synchronised BatchNorm state, dropout keys, exact eval."""

import jax
import numpy as np
import optax
import pytest

from rockjax import models
from rockjax.data import batching, folder
from rockjax.training import feeding, runtime, state as states, steps
from helpers import tiny_config

SIZE = 16


def make_state(config, num_classes=4, size=SIZE, tx=None):
  model = models.create_model(config.model, num_classes, bn_axis_name=steps.AXIS)
  tx = tx or optax.adam(config.learning_rate)
  return states.create_train_state(model, tx, jax.random.PRNGKey(0), size,
                                  ema=config.ema_decay > 0)


def batch_of(n, num_devices, seed=0, size=SIZE):
  rng = np.random.default_rng(seed)
  image = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
  label = rng.integers(0, 4, n).astype(np.int32)
  return dict(image=image.reshape(num_devices, n // num_devices, size, size, 3),
              label=label.reshape(num_devices, n // num_devices))


def run_steps(config, num_devices, num_steps=3, keep_params=False, size=SIZE, tx=None):
  devices = jax.local_devices()[:num_devices]
  mesh = steps.make_mesh(devices)
  state = steps.replicate(make_state(config, size=size, tx=tx), mesh)
  p_train = steps.build_train_step(devices, schedule=optax.constant_schedule(config.learning_rate),
                                  seed=0, ema_decay=config.ema_decay, num_classes=4,
                                  mixup_alpha=config.augment.mixup_alpha,
                                  cutmix_alpha=config.augment.cutmix_alpha)
  history = []
  for i in range(num_steps):
    state, metrics = p_train(state, steps.shard_batch(batch_of(32, num_devices, seed=i,
                                                               size=size), mesh))
    metrics = jax.device_get(metrics)
    if keep_params:
      metrics['params'] = jax.device_get((state.params, state.batch_stats))
    history.append(metrics)
  return state, history


def max_abs_diff(a, b):
  return max(jax.tree.leaves(jax.tree.map(
      lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)))


@pytest.mark.parametrize('block_order', ['relu_bn', 'bn_relu'])
def test_eight_devices_match_one_device_for_the_same_global_batch(block_order):
  config = tiny_config(model__block_order=block_order, learning_rate=1e-2)
  one, m1 = run_steps(config, 1)
  eight, m8 = run_steps(config, 8)
  assert max_abs_diff(one.params, eight.params) < 1e-4
  assert max_abs_diff(one.batch_stats, eight.batch_stats) < 1e-5
  assert max_abs_diff(one.opt_state, eight.opt_state) < 1e-4
  for a, b in zip(m1, m8):
    assert a['count'] == b['count'] == 32
    assert a['correct'] == b['correct']
    np.testing.assert_allclose(a['loss_sum'], b['loss_sum'], rtol=1e-5)
  # The step really moved the parameters (the comparison above is not vacuous).
  assert max_abs_diff(one.params, make_state(config).params) > 1e-3


def test_efficientnet_on_eight_devices_matches_one_device(monkeypatch):
  """Synchronised BatchNorm through the MBConv blocks (depthwise convolutions included): one SGD
  step's update (the gradient) on 8 devices is the one on 1 device. Computed in float64: in
  float32, BatchNorm over 4 images per device (1x1 maps in the last stages) turns rounding into
  differences of about 1% in the first layers' gradients, on 1 device as on 8. The first three
  stages only (a 3x3 and a 5x5 depthwise, strides 1 and 2, an identity skip): the whole network
  compiled twice in float64 took 76 s of the suite."""
  from rockjax.models import efficientnet, layers
  monkeypatch.setitem(layers.DTYPES, 'float32', jax.numpy.float64)
  monkeypatch.setattr(efficientnet, 'BASE_STAGES', efficientnet.BASE_STAGES[:3])
  config = tiny_config(model__name='EfficientNetLite0', data__image_size=32,
                       model__drop_connect=0.0)
  with jax.enable_x64():
    start = jax.device_get(make_state(config, size=32, tx=optax.sgd(1.0)).params)
    updates = []
    for n in (1, 8):
      state, _ = run_steps(config, n, num_steps=1, size=32, tx=optax.sgd(1.0))
      updates.append(jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b), start,
                                  jax.device_get(state.params)))
  assert max(float(np.abs(u).max()) for u in jax.tree.leaves(updates[0])) > 0.1
  assert max_abs_diff(updates[0], updates[1]) < 1e-5


def test_frozen_modules_get_no_gradient_and_the_others_train():
  config = tiny_config(learning_rate=1e-2)
  devices = jax.local_devices()[:1]
  mesh = steps.make_mesh(devices)
  state = steps.replicate(make_state(config), mesh)
  before = jax.device_get(state.params)
  p_train = steps.build_train_step(devices, schedule=optax.constant_schedule(1e-2), seed=0,
                                  frozen=('ConvAct_0',))
  state, _ = p_train(state, steps.shard_batch(batch_of(32, 1), mesh))
  after = jax.device_get(state.params)
  assert max_abs_diff(before['ConvAct_0'], after['ConvAct_0']) == 0  # plain Adam, no freezing
  assert max_abs_diff(before['ResidualStage_0'], after['ResidualStage_0']) > 0


@pytest.mark.parametrize('sync_batchnorm', [True, False])
def test_batch_stats_are_identical_on_every_device(sync_batchnorm):
  config = tiny_config(model__sync_batchnorm=sync_batchnorm)
  state, _ = run_steps(config, 8, num_steps=2)
  for leaf in jax.tree.leaves(state.batch_stats):
    shards = [np.asarray(s.data) for s in leaf.addressable_shards]
    assert len(shards) == 8
    for shard in shards[1:]:
      np.testing.assert_array_equal(shard, shards[0])


def test_dropout_keys_differ_per_device_and_per_step_and_repeat_for_same_seed():
  keys = jax.pmap(lambda _, step: steps.device_dropout_key(0, step), axis_name=steps.AXIS,
                  in_axes=(0, None))
  k0 = np.asarray(jax.random.key_data(keys(np.zeros(4), 0)))
  k1 = np.asarray(jax.random.key_data(keys(np.zeros(4), 1)))
  assert len({tuple(k) for k in k0}) == 4  # one distinct key per device
  assert not np.array_equal(k0, k1)  # and per step
  np.testing.assert_array_equal(k0, np.asarray(jax.random.key_data(keys(np.zeros(4), 0))))


def test_state_is_donated():
  config = tiny_config()
  devices = jax.local_devices()[:2]
  mesh = steps.make_mesh(devices)
  state = steps.replicate(make_state(config), mesh)
  p_train = steps.build_train_step(devices, schedule=optax.constant_schedule(1e-3), seed=0)
  old_leaf = jax.tree.leaves(state.params)[0]
  state, _ = p_train(state, steps.shard_batch(batch_of(32, 2), mesh))
  assert old_leaf.is_deleted()


@pytest.mark.parametrize('num_devices,eval_batch', [(1, 64), (8, 48), (8, 8)])
def test_evaluation_counts_every_example_exactly_once(num_devices, eval_batch):
  config = tiny_config(num_devices=num_devices, eval_batch_size=eval_batch)
  rt = runtime.make_runtime(config)
  state = make_state(config)
  rng = np.random.default_rng(0)
  n = 101  # not a multiple of any batch: the last batch is padded and masked
  images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
  labels = rng.integers(0, 4, n).astype(np.int32)
  image_set = folder.ImageSet(images=images, labels=labels, paths=[str(i) for i in range(n)],
                              class_names=list('abcd'), root='', report={})
  result = feeding.evaluate(steps.build_eval_step(rt.devices), steps.replicate(state, rt.mesh),
                          image_set, config, rt)
  logits = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats}, images,
                          train=False)
  assert result['count'] == n
  assert result['accuracy'] == pytest.approx(np.mean(np.argmax(logits, -1) == labels))
  expected_loss = float(np.mean(steps.cross_entropy(logits, labels)))
  assert result['loss'] == pytest.approx(expected_loss, rel=1e-5)


def test_batch_that_does_not_divide_over_devices_is_a_clear_error():
  with pytest.raises(ValueError, match=r'batch_size: 36 does not divide over 8 device'):
    runtime.make_runtime(tiny_config(num_devices=8, batch_size=36))
  with pytest.raises(ValueError, match='num_devices: 9 requested'):
    runtime.make_runtime(tiny_config(num_devices=9))


def test_label_smoothing_changes_the_loss():
  logits = np.array([[4.0, 0.0, 0.0]])
  plain = float(steps.cross_entropy(logits, np.array([0]))[0])
  smooth = float(steps.cross_entropy(logits, np.array([0]), label_smoothing=0.3)[0])
  assert smooth > plain


def test_ema_follows_the_recurrence_with_its_warm_up_and_is_what_evaluation_uses():
  config = tiny_config(learning_rate=1e-2, ema_decay=0.9)
  initial = make_state(config)
  state, history = run_steps(config, 1, num_steps=4, keep_params=True)
  expected = jax.device_get((initial.params, initial.batch_stats))
  for step, record in enumerate(history):
    d = min(0.9, (1 + step) / (10 + step))
    assert float(states.ema_decay_at(0.9, step)) == pytest.approx(d)
    expected = jax.tree.map(lambda e, p: d * e + (1 - d) * p, expected, record['params'])
  assert max_abs_diff(expected, (state.ema_params, state.ema_batch_stats)) < 1e-6
  assert max_abs_diff(state.ema_params, state.params) > 1e-4  # the average lags the weights
  chosen = states.inference_variables(state)
  assert chosen['params'] is state.ema_params and chosen['batch_stats'] is state.ema_batch_stats
  plain = states.inference_variables(make_state(tiny_config()))
  assert make_state(tiny_config()).ema_params is None and 'params' in plain


def test_ema_on_eight_devices_matches_one_device():
  config = tiny_config(learning_rate=1e-2, ema_decay=0.95)
  one, _ = run_steps(config, 1)
  eight, _ = run_steps(config, 8)
  assert max_abs_diff(one.ema_params, eight.ema_params) < 1e-5
  assert max_abs_diff(one.ema_batch_stats, eight.ema_batch_stats) < 1e-5


def test_mixup_step_trains_with_soft_targets_and_repeats_for_the_same_seed():
  config = tiny_config(learning_rate=1e-2, augment__mixup_alpha=0.4, augment__cutmix_alpha=1.0)
  a, ha = run_steps(config, 2)
  b, hb = run_steps(config, 2)
  plain, hp = run_steps(tiny_config(learning_rate=1e-2), 2)
  assert max_abs_diff(a.params, b.params) == 0.0
  assert all(np.isfinite(h['loss_sum']) and h['count'] == 32 for h in ha)
  assert max_abs_diff(a.params, plain.params) > 1e-4  # mixing changed what was learned


def test_mixing_without_num_classes_is_an_error():
  config = tiny_config(augment__mixup_alpha=0.4)
  devices = jax.local_devices()[:1]
  p_train = steps.build_train_step(devices, schedule=optax.constant_schedule(1e-3), seed=0,
                                  mixup_alpha=0.4)
  state = steps.replicate(make_state(config), steps.make_mesh(devices))
  with pytest.raises(ValueError, match='num_classes'):
    p_train(state, steps.shard_batch(batch_of(32, 1), steps.make_mesh(devices)))


def test_test_time_flip_averages_an_image_and_its_mirror():
  state = make_state(tiny_config())
  images = np.random.default_rng(0).integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8)
  variables = states.inference_variables(state)
  log_p = np.asarray(steps.class_log_probs(state.apply_fn, variables, images, True))
  mirrored = np.asarray(steps.class_log_probs(state.apply_fn, variables, images[:, :, ::-1], True))
  np.testing.assert_allclose(log_p, mirrored, atol=1e-5)  # invariant to the horizontal flip
  p = jax.nn.softmax(state.apply_fn(variables, images, train=False))
  p_flip = jax.nn.softmax(state.apply_fn(variables, images[:, :, ::-1], train=False))
  np.testing.assert_allclose(np.exp(log_p), (p + p_flip) / 2, atol=1e-6)
  single = np.asarray(steps.class_log_probs(state.apply_fn, variables, images, False))
  assert np.abs(single - log_p).max() > 1e-4  # the untrained net is not flip-invariant


def test_test_time_rotations_average_the_four_quarter_turns_and_their_mirrors():
  config = tiny_config()
  state = make_state(config)
  variables = states.inference_variables(state)
  images = np.random.default_rng(3).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
  apply = state.apply_fn
  softmax = lambda x: jax.nn.softmax(apply(variables, x, train=False))
  turns = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
  for flip in (False, True):
    log_p = np.asarray(steps.class_log_probs(apply, variables, images, flip, True))
    views = turns + ([t[:, :, ::-1] for t in turns] if flip else [])
    np.testing.assert_allclose(np.exp(log_p), np.mean([softmax(v) for v in views], axis=0),
                               atol=1e-6)
    turned = np.asarray(steps.class_log_probs(apply, variables, turns[1], flip, True))
    np.testing.assert_allclose(log_p, turned, atol=1e-5)  # invariant to a quarter turn
  with pytest.raises(ValueError, match='square'):
    steps.class_log_probs(apply, variables, images[:, :, :-2], False, True)


def test_test_time_views_are_the_ones_class_log_probs_averages():
  config = tiny_config()
  state = make_state(config)
  variables = states.inference_variables(state)
  images = np.random.default_rng(4).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
  views = steps.test_time_views(True, True)
  dihedral = {np.rot90(m, k, axes=(1, 2)).tobytes() for m in (images, images[:, :, ::-1])
              for k in range(4)}
  assert {np.asarray(steps.view_of(images, v)).tobytes() for v in views} == dihedral  # each once
  assert len(views) == 8 and steps.IDENTITY in views
  assert steps.test_time_views(False, False) == [steps.IDENTITY]
  assert steps.test_time_views(True, False) == [(0, False), (0, True)]
  softmax = lambda x: jax.nn.softmax(state.apply_fn(variables, x, train=False))
  for flip, rotate in ((True, False), (False, True), (True, True)):
    log_p = steps.class_log_probs(state.apply_fn, variables, images, flip, rotate)
    mean = np.mean([softmax(steps.view_of(images, v)) for v in steps.test_time_views(flip, rotate)],
                   axis=0)
    np.testing.assert_allclose(np.exp(log_p), mean, atol=1e-6)
  with pytest.raises(ValueError, match='square'):
    steps.view_of(images[:, :, :-2], (1, False))


def test_evaluation_with_test_time_flip_scores_the_averaged_probabilities():
  config = tiny_config(num_devices=2, eval_batch_size=16)
  rt = runtime.make_runtime(config)
  state = make_state(config)
  rng = np.random.default_rng(1)
  n = 37
  images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
  labels = rng.integers(0, 4, n).astype(np.int32)
  image_set = folder.ImageSet(images=images, labels=labels, paths=[str(i) for i in range(n)],
                              class_names=list('abcd'), root='', report={})
  result = feeding.evaluate(steps.build_eval_step(rt.devices, test_time_flip=True),
                          steps.replicate(state, rt.mesh), image_set, config, rt)
  log_p = np.asarray(steps.class_log_probs(state.apply_fn, states.inference_variables(state),
                                           images, True))
  assert result['accuracy'] == pytest.approx(np.mean(np.argmax(log_p, -1) == labels))
  assert result['loss'] == pytest.approx(float(np.mean(-log_p[np.arange(n), labels])), rel=1e-5)


def options(config):
  return dict(schedule=optax.constant_schedule(config.learning_rate), seed=0,
              ema_decay=config.ema_decay, num_classes=4, mixup_alpha=config.augment.mixup_alpha,
              cutmix_alpha=config.augment.cutmix_alpha)


def test_two_steps_per_dispatch_give_what_two_dispatches_give():
  """On 8 devices (1 is the same program unsharded). Two steps: on CPU the steps are unrolled, so
  each one more is as much more compiling; the resident test below runs three."""
  num_devices = 8
  config = tiny_config(learning_rate=1e-2, ema_decay=0.9, model__dropout=0.2,
                       augment__mixup_alpha=0.4)
  one_by_one, m1 = run_steps(config, num_devices, num_steps=2)
  devices = jax.local_devices()[:num_devices]
  mesh = steps.make_mesh(devices)
  state = steps.replicate(make_state(config), mesh)
  batches = [batch_of(32, num_devices, seed=i) for i in range(2)]
  stacked = {key: np.stack([b[key] for b in batches], axis=1) for key in batches[0]}
  state, metrics = steps.build_train_step(devices, steps_per_call=2, **options(config))(
      state, steps.shard_batch(stacked, mesh))
  metrics = jax.device_get(metrics)
  assert metrics['count'].shape == (2,) and int(state.step) == 2
  assert max_abs_diff(one_by_one.params, state.params) < 1e-5
  assert max_abs_diff(one_by_one.ema_params, state.ema_params) < 1e-5
  assert max_abs_diff(one_by_one.batch_stats, state.batch_stats) < 1e-5
  np.testing.assert_allclose(metrics['loss_sum'], [m['loss_sum'] for m in m1], rtol=1e-5)
  np.testing.assert_array_equal(metrics['count'], [m['count'] for m in m1])


@pytest.mark.parametrize('num_devices,k', [(1, 1), (8, 3)])
def test_resident_steps_train_on_the_batches_the_host_would_send(num_devices, k):
  config = tiny_config(learning_rate=1e-2, model__dropout=0.2)
  batches = [batch_of(32, num_devices, seed=i) for i in range(k)]
  devices = jax.local_devices()[:num_devices]
  mesh = steps.make_mesh(devices)
  p_host = steps.build_train_step(devices, **options(config))
  host = steps.replicate(make_state(config), mesh)
  for b in batches:
    host, _ = p_host(host, steps.shard_batch(b, mesh))
  # The same examples as one resident array, and per-device orders that pick them out again.
  images = np.concatenate([b['image'].reshape(-1, SIZE, SIZE, 3) for b in batches])
  labels = np.concatenate([b['label'].reshape(-1) for b in batches])
  rng = np.random.default_rng(0)
  shuffle = rng.permutation(len(labels))  # resident arrays in any order; `order` undoes it
  data = steps.replicate({'image': images[shuffle], 'label': labels[shuffle]}, mesh)
  order = np.argsort(shuffle)  # order[i] = where example i now is
  per_device = 32 // num_devices
  orders = steps.shard_batch(batching.device_orders(order, k, num_devices, per_device), mesh)
  resident = steps.replicate(make_state(config), mesh)
  p_resident = steps.build_train_step(devices, feed='resident', steps_per_call=k,
                                      per_device=per_device, **options(config))
  resident, metrics = p_resident(resident, data, orders, np.int32(0))
  assert jax.device_get(metrics)['count'].shape == (k,)
  tolerance = 0.0 if k == 1 else 1e-5  # one step is the same program; a scan may round apart
  assert max_abs_diff(host.params, resident.params) <= tolerance
  assert max_abs_diff(host.batch_stats, resident.batch_stats) <= max(tolerance, 1e-7)


def test_the_step_builder_names_its_feeds():
  with pytest.raises(ValueError, match='feed'):
    steps.build_train_step(jax.local_devices()[:1], feed='disk', schedule=lambda s: 0.0, seed=0)
  with pytest.raises(ValueError, match='feed'):
    steps.build_eval_step(jax.local_devices()[:1], feed='disk')


def test_class_weights_scale_each_examples_loss():
  """Weights of 1 change nothing; a batch of class-0 photos with class 0 weighted 0 gives no
  gradient, so Adam leaves every parameter as it was (the reported loss stays unweighted)."""
  config = tiny_config(learning_rate=1e-2)
  devices = jax.local_devices()[:1]
  mesh = steps.make_mesh(devices)
  batch = batch_of(16, 1)
  batch['label'] = np.zeros_like(batch['label'])
  results = {}
  for name, weights in (('none', None), ('ones', (1.0,) * 4), ('zero', (0.0, 1.0, 1.0, 1.0))):
    state = steps.replicate(make_state(config), mesh)
    p_train = steps.build_train_step(devices, schedule=optax.constant_schedule(1e-2), seed=0,
                                     class_weights=weights)
    before = jax.device_get(state.params)
    state, metrics = p_train(state, steps.shard_batch(batch, mesh))
    results[name] = (before, jax.device_get(state.params), float(metrics['loss_sum']))
  assert max_abs_diff(results['none'][1], results['ones'][1]) == 0
  assert max_abs_diff(results['zero'][0], results['zero'][1]) == 0
  assert max_abs_diff(results['none'][0], results['none'][1]) > 0
  assert results['zero'][2] == results['none'][2]  # the reported loss is the plain one
