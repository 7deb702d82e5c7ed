"""The seeds' fully connected classifiers as one configurable MLP."""

import itertools

from flax import nnx

from jaxbp import _compat, nn
from jaxbp.models import outputs


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

  ``kernel_init`` names every Linear's initialization (with ``init_std`` for
  ``'normal'``): one of ``nn.KERNEL_INITS``, see ``jaxbp.nn.initializers``;
  ``'default'`` is Flax's (truncated-normal LeCun weights, zero biases).
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
      kernel_init="default",
      init_std=None,
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
    nn.check_vjp_mode(vjp)
    nn.initializers.check(kernel_init, init_std)
    widths = (in_features, *hidden_units)
    kw = dict(vjp=vjp, dtype=dtype, rngs=rngs)

    def linear(i, o):
      inits = nn.initializers.layer_inits(kernel_init, i, init_std)
      return nn.Linear(i, o, **kw, **inits)

    self.hidden = _compat.List(
        [linear(i, o) for i, o in itertools.pairwise(widths)]
    )
    norms = {"batch": nn.BatchNorm, "layer": nn.LayerNorm}
    self.norms = _compat.List(
        [norms[norm](h, **kw) for h in hidden_units] if norm else []
    )
    # Without dropout, rngs need no "dropout" stream.
    self.dropout = nn.Dropout(dropout, vjp=vjp, rngs=rngs if dropout else None)
    self.head = linear(widths[-1], num_classes)
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
    return outputs.logits(self.head(x))
