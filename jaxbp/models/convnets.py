"""The seeds' convolutional models: VGG (Table 1) and the tutorial ConvNet."""

from flax import nnx

from jaxbp import _compat, nn
from jaxbp.models import outputs


class ConvBNReLU(nnx.Module):
  r"""conv3x3 (stride 1, 'SAME', with bias) → BatchNorm → ReLU.

  With hand-written rules (``vjp='manual'``) the conv's bias :math:`b` goes
  to the BatchNorm as its ``shift`` instead of being added to the conv's
  output :math:`z`. In training mode :math:`\mathrm{BN}(z + b) =
  \mathrm{BN}(z)`, so :math:`b` only moves the running mean, and with
  ``BatchNorm``'s backward :math:`\bar{z} = \gamma r (\bar{y} - (\bar\beta
  + \hat{z} \bar\gamma) / M)` over the :math:`M` entries of a channel,

  .. math::
    \bar{b} = \textstyle\sum_i \bar{z}_i = \gamma r \big(\sum_i
    \bar{y}_i - \bar\beta - \bar\gamma \sum_i \hat{z}_i / M\big) = 0,

  since :math:`\sum_i \bar{y}_i = \bar\beta` and :math:`\sum_i \hat{z}_i
  = 0`: exactly zero, where autodiff of the literal forward gets rounding
  noise (which Adam, dividing by its own scale, can turn into steps of up to the
  learning rate; the bias stays put here). Skipping the add and the bias's
  sum saves a pass over the conv's output (VGG Adam step, in-process A/B on
  a 2-core Xeon: 0.941x the time at batch 128, 0.967x at batch 32; on a
  2-core AMD EPYC Zen 3: 0.995x and 0.992x).
  ``vjp='autodiff'`` runs the literal forward; in eval mode both normalize
  :math:`z + b` with the running statistics.

  Measured and not kept: BatchNorm and ReLU as one op with one rule, whose
  backward recomputes ReLU's mask :math:`\gamma \hat{z} + \beta > 0` from
  the norm's residual :math:`\hat{z}` instead of keeping it. XLA compiled
  the same temporary memory (54.2 MiB at batch 32, 153.9 at 128) and the
  same losses; the VGG Adam step took 1.02x the time at both batches
  (in-process A/B, medians of 30 and 16 pairs, Zen 3).
  """

  def __init__(
      self,
      in_features,
      out_features,
      *,
      kernel_init="default",
      init_std=None,
      vjp,
      dtype,
      rngs,
  ):
    kw = dict(vjp=vjp, dtype=dtype, rngs=rngs)
    inits = nn.initializers.layer_inits(kernel_init, 9 * in_features, init_std)
    self.conv = nn.Conv(in_features, out_features, 3, **kw, **inits)
    self.bn = nn.BatchNorm(out_features, **kw)
    self.vjp = vjp

  def __call__(self, x):
    if self.vjp == "autodiff":
      return nn.relu(self.bn(self.conv(x)), vjp=self.vjp)
    z = self.conv(x, add_bias=False)
    return nn.relu(self.bn(z, shift=self.conv.bias[...]), vjp=self.vjp)


# The seeds' Table 1: conv3x3-BN-ReLU widths per group; a max-pool ends each.
VGG_TABLE1 = ((64,), (128,), (256, 256), (512, 512), (512, 512))


class VGG(nnx.Module):
  """The seeds' VGG (Table 1): 9,231,114 parameters for 10 classes.

  Five groups of conv3x3-BN-ReLU blocks (64 | 128 | 256, 256 | 512, 512 |
  512, 512), each followed by a 3x3 max-pool with stride 2 and padding 1, then
  ``Linear(512, num_classes)``. A 32x32 input leaves a 1x1x512 map, which is
  flattened as in Table 1; inputs of other sizes (any size ≥ 1, e.g. 28x28
  grayscale with ``in_channels=1``) leave a larger map, which is global-average
  pooled to 512 features, so the parameter count never depends on the size.
  ``kernel_init`` (and ``init_std``) as in ``MLP``, for every conv and the
  classifier.
  """

  def __init__(
      self,
      num_classes=10,
      *,
      in_channels=3,
      groups=VGG_TABLE1,
      kernel_init="default",
      init_std=None,
      vjp="manual",
      dtype=None,
      rngs,
  ):
    nn.check_vjp_mode(vjp)
    nn.initializers.check(kernel_init, init_std)
    kw = dict(vjp=vjp, dtype=dtype, rngs=rngs)
    init = dict(kernel_init=kernel_init, init_std=init_std)
    self.groups, width = _compat.List([]), in_channels
    for group in groups:
      blocks = _compat.List([])
      for features in group:
        blocks.append(ConvBNReLU(width, features, **init, **kw))
        width = features
      self.groups.append(blocks)
    inits = nn.initializers.layer_inits(kernel_init, width, init_std)
    self.classifier = nn.Linear(width, num_classes, **kw, **inits)
    self.vjp = vjp

  def __call__(self, x):
    for blocks in self.groups:
      for block in blocks:
        x = block(x)
      x = nn.max_pool2d(x, 3, 2, 1, vjp=self.vjp)
    if x.shape[1:3] == (1, 1):
      x = x.reshape(x.shape[0], -1)
    else:
      x = nn.global_avg_pool(x, vjp=self.vjp)
    return outputs.logits(self.classifier(x))


class SmallConvNet(nnx.Module):
  """The PyTorch 60-minute-blitz CIFAR net: 62,006 parameters on 32x32x3.

  conv5 (in_channels→6) → ReLU → maxpool 2x2 → conv5 (6→16) → ReLU → maxpool
  2x2 → fc 120 → ReLU → fc 84 → ReLU → fc ``num_classes``. The flatten size is
  computed from ``image_size`` (an int or ``(height, width)``) given at
  construction: ``padding='VALID'`` (the tutorial's) needs images of at least
  14x14, ``padding='SAME'`` works for any size (e.g. 8x8 digits).

  ``dropout`` (not in the tutorial; 0 leaves it out) drops the input of each
  fully connected layer, in ``model.train()`` mode only. ``kernel_init`` (and
  ``init_std``) as in ``MLP``; ``'pytorch'`` is the tutorial's own.
  """

  def __init__(
      self,
      num_classes=10,
      *,
      in_channels=3,
      image_size=32,
      padding="VALID",
      dropout=0.0,
      kernel_init="default",
      init_std=None,
      vjp="manual",
      dtype=None,
      rngs,
  ):
    nn.check_vjp_mode(vjp)
    h, w = (image_size,) * 2 if isinstance(image_size, int) else image_size
    shrink = 4 if padding == "VALID" else 0
    for _ in range(2):
      h, w = (h - shrink) // 2, (w - shrink) // 2
    if h < 1 or w < 1:
      raise ValueError(
          f"SmallConvNet with padding={padding!r} cannot take"
          f" image_size={image_size}: two conv5+pool2 stages leave nothing;"
          " use images of at least 14x14 or padding='SAME'."
      )
    nn.initializers.check(kernel_init, init_std)
    kw = dict(vjp=vjp, dtype=dtype, rngs=rngs)
    init = lambda fan_in: nn.initializers.layer_inits(
        kernel_init, fan_in, init_std
    )
    conv = dict(padding=padding, **kw)
    self.conv1 = nn.Conv(in_channels, 6, 5, **conv, **init(25 * in_channels))
    self.conv2 = nn.Conv(6, 16, 5, **conv, **init(25 * 6))
    self.fc1 = nn.Linear(16 * h * w, 120, **kw, **init(16 * h * w))
    self.fc2 = nn.Linear(120, 84, **kw, **init(120))
    self.fc3 = nn.Linear(84, num_classes, **kw, **init(84))
    # Without dropout, rngs need no "dropout" stream.
    self.dropout = nn.Dropout(dropout, vjp=vjp, rngs=rngs if dropout else None)
    self.vjp = vjp

  def __call__(self, x):
    relu = lambda x: nn.relu(x, vjp=self.vjp)
    pool = lambda x: nn.max_pool2d(x, 2, 2, 0, vjp=self.vjp)
    x = pool(relu(self.conv1(x)))
    x = pool(relu(self.conv2(x)))
    x = self.dropout(x.reshape(x.shape[0], -1))
    x = self.dropout(relu(self.fc1(x)))
    x = self.dropout(relu(self.fc2(x)))
    return outputs.logits(self.fc3(x))
