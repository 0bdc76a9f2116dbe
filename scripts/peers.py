"""The same networks in Keras 3 and PyTorch, built from a rockjax config: the peers that
scripts/benchmark.py (CPU, Keras) and scripts/device_check.py (GPU, PyTorch) time beside rockjax.

EfficientNet-Lite (model.name=EfficientNetLite0/1/2) is built from the same block table as
rockjax/models/efficientnet.py: a 3x3 stride-2 stem, MBConv blocks (1x1 expand, kxk depthwise, 1x1
project; BatchNorm after each, ReLU6 after the first two; an identity skip where the shapes match),
a 1x1 conv to 1280 channels, global average pooling, dropout and the classifier, with TensorFlow's
'SAME' padding. Stochastic depth is left out of the peers (it does not change the work per step).

Each mirrors rockjax/models/residual.py's ResidualCNN for the config's model section: a stem conv
(ReLU and BatchNorm in the configured order) and 2x2 max-pool, then per stage a projection shortcut
(conv + ReLU) beside `convs_per_stage` convs (each with ReLU; BatchNorm after all but the last), the sum
batch-normalised and max-pooled, dropout between stages, global average pooling and a dense layer.
A bias right before BatchNorm is left out, as rockjax does for conv-BN-ReLU. Parameter counts
(BatchNorm statistics included) equal rockjax's; a test checks that for the shipped configs.
"""

from __future__ import annotations


def _stages(m):
  return list(zip(m.widths, m.shortcut_kernels))


def _is_efficientnet(model_config) -> bool:
  return model_config.name.startswith('EfficientNetLite')


def _efficientnet_layout(model_config):
  from rockjax.bench import studied
  return studied.efficientnet_layout(model_config.name)


def keras_efficientnet(model_config, size: int, num_classes: int, frozen=()):
  """An uncompiled Keras EfficientNet-Lite of the config's variant. Its layers are named after
  rockjax's top-level modules (stem_*, block_<i>_*, top_*), and those of the `frozen` modules are
  not trainable (Keras then runs their BatchNorm in inference mode, as rockjax does)."""
  import keras
  from keras import layers
  from rockjax.bench import studied
  m = model_config
  net = _efficientnet_layout(m)
  blocks = net.blocks

  def conv_bn(x, module, part, features, kernel=1, stride=1, act=True):
    trainable = not studied.is_frozen(module, tuple(frozen))
    x = layers.Conv2D(features, kernel, stride, padding='same', use_bias=False,
                      name=f'{module}_{part}_conv', trainable=trainable)(x)
    x = layers.BatchNormalization(momentum=m.bn_momentum, epsilon=m.bn_epsilon,
                                  name=f'{module}_{part}_bn', trainable=trainable)(x)
    return layers.ReLU(6.0)(x) if act else x

  def depthwise_bn(x, module, kernel, stride):
    trainable = not studied.is_frozen(module, tuple(frozen))
    x = layers.DepthwiseConv2D(kernel, stride, padding='same', use_bias=False,
                               name=f'{module}_depthwise_conv', trainable=trainable)(x)
    x = layers.BatchNormalization(momentum=m.bn_momentum, epsilon=m.bn_epsilon,
                                  name=f'{module}_depthwise_bn', trainable=trainable)(x)
    return layers.ReLU(6.0)(x)

  inputs = keras.Input((size, size, 3))
  x = layers.Rescaling(1 / net.input_std, offset=-net.input_mean / net.input_std)(inputs)
  x = conv_bn(x, 'stem', 'stem', net.stem_channels, 3, 2)
  for i, (kernel, stride, expand, cin, out) in enumerate(blocks):
    module = f'block_{i}'
    y = conv_bn(x, module, 'expand', cin * expand) if expand != 1 else x
    y = depthwise_bn(y, module, kernel, stride)
    y = conv_bn(y, module, 'project', out, act=False)
    x = layers.Add()([x, y]) if stride == 1 and cin == out else y
  x = layers.GlobalAveragePooling2D()(conv_bn(x, 'top', 'top', net.top_channels))
  if m.dropout:
    x = layers.Dropout(m.dropout)(x)
  return keras.Model(inputs, layers.Dense(num_classes)(x))


def keras_model(model_config, size: int, num_classes: int, learning_rate: float = 1e-4,
                adam_eps: float = 1e-7, metrics=(), frozen=()):
  """A compiled Keras model (Adam, sparse cross-entropy on logits) of the config's ResidualCNN
  (or EfficientNet-Lite, with the `frozen` modules not trainable)."""
  import keras
  from keras import layers
  m = model_config
  if _is_efficientnet(m):
    model = keras_efficientnet(m, size, num_classes, frozen)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, epsilon=adam_eps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=list(metrics))
    return model
  he = keras.initializers.HeNormal()
  bn = lambda: layers.BatchNormalization(momentum=m.bn_momentum, epsilon=m.bn_epsilon)

  def conv_act(x, features, kernel, use_bn=True):
    bias = not (use_bn and m.block_order == 'bn_relu')
    x = layers.Conv2D(features, kernel, padding='same', use_bias=bias, kernel_initializer=he)(x)
    if not use_bn:
      return layers.ReLU()(x)
    return bn()(layers.ReLU()(x)) if m.block_order == 'relu_bn' else layers.ReLU()(bn()(x))

  inputs = keras.Input((size, size, 3))
  x = layers.Rescaling(1 / 255)(inputs)
  x = layers.MaxPooling2D()(conv_act(x, m.stem_features, m.stem_kernel))
  if m.dropout:
    x = layers.Dropout(m.dropout)(x)
  for i, (width, shortcut_kernel) in enumerate(_stages(m)):
    shortcut = conv_act(x, width, shortcut_kernel, use_bn=False)
    y = x
    for j in range(m.convs_per_stage):
      y = conv_act(y, width, m.kernel_size, use_bn=j < m.convs_per_stage - 1)
    x = layers.MaxPooling2D()(bn()(layers.Add()([y, shortcut])))
    if m.dropout and i < len(m.widths) - 1:
      x = layers.Dropout(m.dropout)(x)
  x = layers.GlobalAveragePooling2D()(x)
  outputs = layers.Dense(num_classes, kernel_initializer=he)(x)
  model = keras.Model(inputs, outputs)
  model.compile(optimizer=keras.optimizers.Adam(learning_rate, epsilon=adam_eps),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=list(metrics))
  return model


def torch_efficientnet(model_config, num_classes: int):
  """A torch.nn.Module of the config's EfficientNet-Lite (float images in [0, 255], NCHW), with
  TensorFlow's 'SAME' padding computed from each input's size."""
  from torch import nn
  m = model_config
  net = _efficientnet_layout(m)
  blocks = net.blocks
  momentum = 1.0 - m.bn_momentum

  def same_pad(x, kernel, stride):
    from rockjax.bench import studied
    (top, bottom), (left, right) = (studied.same_padding(x.shape[2], kernel, stride),
                                    studied.same_padding(x.shape[3], kernel, stride))
    return nn.functional.pad(x, (left, right, top, bottom))

  class ConvBN(nn.Module):
    def __init__(self, cin, cout, kernel=1, stride=1, groups=1, act=True):
      super().__init__()
      self.kernel, self.stride, self.act = kernel, stride, act
      self.conv = nn.Conv2d(cin, cout, kernel, stride, groups=groups, bias=False)
      self.bn = nn.BatchNorm2d(cout, eps=m.bn_epsilon, momentum=momentum)

    def forward(self, x):
      x = self.bn(self.conv(same_pad(x, self.kernel, self.stride)))
      return nn.functional.relu6(x) if self.act else x

  class MBConv(nn.Module):
    def __init__(self, kernel, stride, expand, cin, cout):
      super().__init__()
      mid = cin * expand
      self.expand = ConvBN(cin, mid) if expand != 1 else nn.Identity()
      self.depthwise = ConvBN(mid, mid, kernel, stride, groups=mid)
      self.project = ConvBN(mid, cout, act=False)
      self.skip = stride == 1 and cin == cout

    def forward(self, x):
      y = self.project(self.depthwise(self.expand(x)))
      return x + y if self.skip else y

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.stem = ConvBN(3, net.stem_channels, 3, 2)
      self.blocks = nn.Sequential(*(MBConv(*spec) for spec in blocks))
      self.top = ConvBN(blocks[-1][4], net.top_channels)
      self.dropout = nn.Dropout(m.dropout)
      self.head = nn.Linear(net.top_channels, num_classes)

    def forward(self, images):
      x = self.top(self.blocks(self.stem((images - net.input_mean) / net.input_std)))
      return self.head(self.dropout(x.mean(dim=(2, 3))))

  return Net()


def torch_model(model_config, num_classes: int):
  """A torch.nn.Module of the config's ResidualCNN or EfficientNet-Lite (NCHW in; use
  channels_last memory format)."""
  import torch
  from torch import nn
  m = model_config
  if _is_efficientnet(m):
    return torch_efficientnet(m, num_classes)
  momentum = 1.0 - m.bn_momentum  # PyTorch counts momentum the other way round

  class ConvAct(nn.Module):
    def __init__(self, cin, cout, kernel, use_bn=True):
      super().__init__()
      bias = not (use_bn and m.block_order == 'bn_relu')
      self.conv = nn.Conv2d(cin, cout, kernel, padding='same', bias=bias)
      nn.init.kaiming_normal_(self.conv.weight, nonlinearity='relu')
      self.bn = nn.BatchNorm2d(cout, eps=m.bn_epsilon, momentum=momentum) if use_bn else None

    def forward(self, x):
      x = self.conv(x)
      if self.bn is None:
        return torch.relu(x)
      return self.bn(torch.relu(x)) if m.block_order == 'relu_bn' else torch.relu(self.bn(x))

  class Stage(nn.Module):
    def __init__(self, cin, width, shortcut_kernel):
      super().__init__()
      self.shortcut = ConvAct(cin, width, shortcut_kernel, use_bn=False)
      self.convs = nn.ModuleList(
          ConvAct(cin if j == 0 else width, width, m.kernel_size, use_bn=j < m.convs_per_stage - 1)
          for j in range(m.convs_per_stage))
      self.bn = nn.BatchNorm2d(width, eps=m.bn_epsilon, momentum=momentum)

    def forward(self, x):
      y = x
      for conv in self.convs:
        y = conv(y)
      return nn.functional.max_pool2d(self.bn(y + self.shortcut(x)), 2)

  class Net(nn.Module):
    def __init__(self):
      super().__init__()
      self.stem = ConvAct(3, m.stem_features, m.stem_kernel)
      cins = [m.stem_features] + list(m.widths[:-1])
      self.stages = nn.ModuleList(Stage(c, w, k) for c, (w, k) in zip(cins, _stages(m)))
      self.dropout = nn.Dropout(m.dropout)
      self.head = nn.Linear(m.widths[-1], num_classes)

    def forward(self, images):  # float images in [0, 255], NCHW
      x = nn.functional.max_pool2d(self.stem(images / 255.0), 2)
      x = self.dropout(x)
      for i, stage in enumerate(self.stages):
        x = stage(x)
        if i < len(self.stages) - 1:
          x = self.dropout(x)
      return self.head(x.mean(dim=(2, 3)))

  return Net()


def torch_num_params(module) -> int:
  """Parameters plus BatchNorm running statistics (how rockjax and Keras count)."""
  stats = sum(b.numel() for name, b in module.named_buffers()
              if name.endswith(('running_mean', 'running_var')))
  return sum(p.numel() for p in module.parameters()) + stats
