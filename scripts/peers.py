"""The same networks in Keras 3 and PyTorch, built from a rockjax config: the peers that
scripts/benchmark.py (CPU, Keras) and scripts/device_check.py (GPU, PyTorch) time beside rockjax.

Each mirrors rockjax/models.py's ResidualCNN for the config's model section: a stem conv (ReLU and
BatchNorm in the configured order) and 2x2 max-pool, then per stage a projection shortcut (conv +
ReLU) beside `convs_per_stage` convs (each with ReLU; BatchNorm after all but the last), the sum
batch-normalised and max-pooled, dropout between stages, global average pooling and a dense layer.
A bias right before BatchNorm is left out, as rockjax does for conv-BN-ReLU. Parameter counts
(BatchNorm statistics included) equal rockjax's; a test checks that for the shipped configs.
"""

from __future__ import annotations


def _stages(m):
  return list(zip(m.widths, m.shortcut_kernels))


def keras_model(model_config, size: int, num_classes: int, learning_rate: float = 1e-4,
                adam_eps: float = 1e-7, metrics=()):
  """A compiled Keras model (Adam, sparse cross-entropy on logits) of the config's ResidualCNN."""
  import keras
  from keras import layers
  m = model_config
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


def torch_model(model_config, num_classes: int):
  """A torch.nn.Module of the config's ResidualCNN (NCHW in; use channels_last memory format)."""
  import torch
  from torch import nn
  m = model_config
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
