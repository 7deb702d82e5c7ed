"""The seeds' models: MLPs, VGG (Table 1) and the PyTorch-tutorial ConvNet."""

import itertools

import jax
import jax.numpy as jnp
from flax import nnx

from jaxbp import nn


def _logits(x):
  # Models may compute in bf16; the softmax and loss always see float32.
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


class MLP(nnx.Module):
  r"""A fully connected classifier; flattens its input.

  Each hidden layer is ``Linear → [BatchNorm | LayerNorm] → activation →
  [Dropout]``, followed by a ``Linear`` to ``num_classes`` logits. This covers
  the seeds' NumPy/PyTorch MLPs (``activation`` in ``relu``, ``leaky_relu``
  with ``negative_slope``, the NumPy MLP's 0.02 included, ``elu``, ``tanh``,
  ``sigmoid``), their batch-norm variants (``norm='batch'``) and the
  mini-autodiff MNIST experiments (sigmoid vs relu, an extra layer, a
  residual connection).

  ``residual=True`` adds the first hidden layer's output to the third's:

  .. math::
    h_3 = f(\mathrm{norm}(W_3 h_2 + b_3)) + h_1,

  (dropout, if any, applies to :math:`f(\cdot)` before the sum), which needs at
  least three hidden layers and ``hidden_units[0] == hidden_units[2]``.
  """

  def __init__(
      self,
      in_features,
      hidden_units,
      num_classes,
      activation="leaky_relu",
      norm=None,
      dropout=0.0,
      residual=False,
      *,
      negative_slope=0.01,
      vjp="manual",
      dtype=None,
      rngs,
  ):
    hidden_units = tuple(hidden_units)
    if activation not in nn.ACTIVATIONS:
      raise ValueError(
          f"activation must be one of {sorted(nn.ACTIVATIONS)}, got"
          f" {activation!r}."
      )
    if norm not in (None, "batch", "layer"):
      raise ValueError(f"norm must be None, 'batch' or 'layer', got {norm!r}.")
    if residual and (
        len(hidden_units) < 3 or hidden_units[0] != hidden_units[2]
    ):
      raise ValueError(
          "residual=True adds hidden layer 1 to hidden layer 3: it needs at"
          " least 3 hidden layers with hidden_units[0] == hidden_units[2],"
          f" got hidden_units={hidden_units}."
      )
    nn.check_vjp(vjp)
    widths = (in_features, *hidden_units)
    kw = dict(vjp=vjp, dtype=dtype, rngs=rngs)
    self.hidden = nnx.List(
        [nn.Linear(i, o, **kw) for i, o in itertools.pairwise(widths)]
    )
    norms = {"batch": nn.BatchNorm, "layer": nn.LayerNorm}
    self.norms = nnx.List(
        [norms[norm](h, **kw) for h in hidden_units] if norm else []
    )
    # Without dropout, rngs need no "dropout" stream.
    self.dropout = nn.Dropout(dropout, vjp=vjp, rngs=rngs if dropout else None)
    self.head = nn.Linear(widths[-1], num_classes, **kw)
    self.activation, self.negative_slope = activation, negative_slope
    self.residual, self.vjp = residual, vjp

  def _act(self, x):
    f = nn.ACTIVATIONS[self.activation]
    if self.activation == "leaky_relu":
      return f(x, self.negative_slope, vjp=self.vjp)
    return f(x, vjp=self.vjp)

  def __call__(self, x):
    x = x.reshape(x.shape[0], -1)
    h1 = None
    for i, linear in enumerate(self.hidden):
      x = linear(x)
      if self.norms:
        x = self.norms[i](x)
      x = self.dropout(self._act(x))
      if i == 0:
        h1 = x
      if i == 2 and self.residual:
        x = x + h1
    return _logits(self.head(x))


class ConvBNReLU(nnx.Module):
  """conv3x3 (stride 1, 'SAME', with bias) → BatchNorm → ReLU."""

  def __init__(self, in_features, out_features, *, vjp, dtype, rngs):
    kw = dict(vjp=vjp, dtype=dtype, rngs=rngs)
    self.conv = nn.Conv(in_features, out_features, 3, **kw)
    self.bn = nn.BatchNorm(out_features, **kw)
    self.vjp = vjp

  def __call__(self, x):
    return nn.relu(self.bn(self.conv(x)), vjp=self.vjp)


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
  """

  def __init__(
      self,
      num_classes=10,
      *,
      in_channels=3,
      groups=VGG_TABLE1,
      vjp="manual",
      dtype=None,
      rngs,
  ):
    nn.check_vjp(vjp)
    kw = dict(vjp=vjp, dtype=dtype, rngs=rngs)
    self.groups, width = nnx.List([]), in_channels
    for group in groups:
      blocks = nnx.List([])
      for features in group:
        blocks.append(ConvBNReLU(width, features, **kw))
        width = features
      self.groups.append(blocks)
    self.classifier = nn.Linear(width, num_classes, **kw)
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
    return _logits(self.classifier(x))


class SmallConvNet(nnx.Module):
  """The PyTorch 60-minute-blitz CIFAR net: 62,006 parameters on 32x32x3.

  conv5 (in_channels→6) → ReLU → maxpool 2x2 → conv5 (6→16) → ReLU → maxpool
  2x2 → fc 120 → ReLU → fc 84 → ReLU → fc ``num_classes``. The flatten size is
  computed from ``image_size`` (an int or ``(height, width)``) given at
  construction: ``padding='VALID'`` (the tutorial's) needs images of at least
  14x14, ``padding='SAME'`` works for any size (e.g. 8x8 digits).
  """

  def __init__(
      self,
      num_classes=10,
      *,
      in_channels=3,
      image_size=32,
      padding="VALID",
      vjp="manual",
      dtype=None,
      rngs,
  ):
    nn.check_vjp(vjp)
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
    kw = dict(vjp=vjp, dtype=dtype, rngs=rngs)
    self.conv1 = nn.Conv(in_channels, 6, 5, padding=padding, **kw)
    self.conv2 = nn.Conv(6, 16, 5, padding=padding, **kw)
    self.fc1 = nn.Linear(16 * h * w, 120, **kw)
    self.fc2 = nn.Linear(120, 84, **kw)
    self.fc3 = nn.Linear(84, num_classes, **kw)
    self.vjp = vjp

  def __call__(self, x):
    relu = lambda x: nn.relu(x, vjp=self.vjp)
    pool = lambda x: nn.max_pool2d(x, 2, 2, 0, vjp=self.vjp)
    x = pool(relu(self.conv1(x)))
    x = pool(relu(self.conv2(x)))
    x = x.reshape(x.shape[0], -1)
    x = relu(self.fc2(relu(self.fc1(x))))
    return _logits(self.fc3(x))


_LAYERS = (nn.Linear, nn.Conv, nn.BatchNorm, nn.LayerNorm, nn.Dropout)
_POOLS = ("max_pool2d", "avg_pool2d", "global_avg_pool")


def summary(model, input_shape, dtype=jnp.float32):
  """Returns a table of the layers in call order: output shape, parameters.

  ``input_shape`` includes the batch axis, e.g. ``(1, 32, 32, 3)``. Nothing is
  computed (shapes come from ``jax.eval_shape``) and ``model`` is untouched.
  Parameters are the trainable ``nnx.Param`` leaves; running statistics are
  reported on their own line.
  """
  graphdef, state = nnx.split(model)
  rows = [("layer", "type", "output shape", "params")]

  def tap(fn, kind):
    def call(*args, **kwargs):
      y = fn(*args, **kwargs)
      if kind is nn.Dropout and not args[0].rate:
        pass  # A rate-0 dropout is the identity: not worth a row.
      elif isinstance(kind, str):
        rows.append(("", kind, str(y.shape), ""))
      else:
        name = ".".join(map(str, names[id(args[0])]))
        params = f"{_count(args[0], nnx.Param):,}"
        rows.append((name, kind.__name__, str(y.shape), params))
      return y

    return call

  def forward(state, x):
    model = nnx.merge(graphdef, state)
    names.update((id(m), path) for path, m in nnx.iter_modules(model))
    return model(x)

  # Like nnx.tabulate: wrap the layers' calls while tracing, then restore them.
  names, calls = {}, {cls: cls.__call__ for cls in _LAYERS}
  pools = {name: getattr(nn, name) for name in _POOLS}
  try:
    for cls, fn in calls.items():
      cls.__call__ = tap(fn, cls)
    for name, fn in pools.items():
      setattr(nn, name, tap(fn, name))
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    y = jax.eval_shape(forward, state, x)
  finally:
    for cls, fn in calls.items():
      cls.__call__ = fn
    for name, fn in pools.items():
      setattr(nn, name, fn)
  w = [max(len(row[i]) for row in rows) for i in range(4)]
  lines = [
      f"{a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d:>{w[3]}}".rstrip()
      for a, b, c, d in rows
  ]
  rule = "-" * len(lines[0])
  return "\n".join([
      lines[0],
      rule,
      *lines[1:],
      rule,
      f"input {x.shape} -> logits {y.shape}",
      f"trainable parameters: {_count(model, nnx.Param):,}",
      f"running statistics:   {_count(model, nnx.BatchStat):,}",
  ])


def _count(module, kind):
  return sum(x.size for x in jax.tree.leaves(nnx.state(module, kind)))
