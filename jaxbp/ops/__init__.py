"""Pure functions, each with a hand-derived backward attached by jax.custom_vjp."""

from jaxbp.ops.activations import elu, leaky_relu, relu, sigmoid, tanh
from jaxbp.ops.conv import conv2d
from jaxbp.ops.dropout import dropout
from jaxbp.ops.elementwise import divide, expand, normalize
from jaxbp.ops.linear import linear
from jaxbp.ops.losses import cross_entropy, softmax_cross_entropy
from jaxbp.ops.norm import batch_norm, batch_norm_with_stats, layer_norm
from jaxbp.ops.pool import avg_pool2d, global_avg_pool, max_pool2d
from jaxbp.ops.softmax import log_softmax, softmax


def plain(op):
  """Returns `op`'s plain forward, without the custom rule.

  That is what autodiff differentiates when a module runs with
  ``vjp='autodiff'``: the op's explicitly named ``reference`` (a natural
  lax formulation, for ops whose fast forward differs) or else its primal
  ``op.fun``. Call it with the same arguments as ``op``.
  """
  if not hasattr(op, "fun"):
    name = getattr(op, "__name__", repr(op))
    raise TypeError(
        f"ops.plain: {name} is not a jax.custom_vjp op, so it has no plain"
        " forward to return; pass a jaxbp.ops op (e.g. ops.relu)."
    )
  return getattr(op, "reference", None) or op.fun


__all__ = [
    "avg_pool2d",
    "batch_norm",
    "batch_norm_with_stats",
    "conv2d",
    "cross_entropy",
    "divide",
    "dropout",
    "elu",
    "expand",
    "global_avg_pool",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "normalize",
    "plain",
    "relu",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "tanh",
]
