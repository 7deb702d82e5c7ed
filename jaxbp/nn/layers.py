"""Linear and Conv: the parameterized layers, twins of nnx.Linear and nnx.Conv."""

import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn import dtypes, initializers

from jaxbp import ops
from jaxbp.nn import functional

default_kernel_init = initializers.lecun_normal()
default_bias_init = initializers.zeros_init()


class Linear(nnx.Module):
  """``y = x @ kernel + bias``; the twin of ``nnx.Linear`` (same init, names).

  ``dtype`` is the compute dtype (e.g. ``jnp.bfloat16``): inputs and
  parameters are cast to it for the op, the parameters stay ``param_dtype``.
  ``None`` promotes the input and parameter dtypes, as ``nnx.Linear`` does.
  """

  def __init__(
      self,
      in_features,
      out_features,
      *,
      vjp="manual",
      dtype=None,
      param_dtype=jnp.float32,
      kernel_init=default_kernel_init,
      bias_init=default_bias_init,
      rngs,
  ):
    functional.check_vjp_mode(vjp)
    shape = (in_features, out_features)
    self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
    self.bias = nnx.Param(
        bias_init(rngs.params(), (out_features,), param_dtype)
    )
    self.in_features, self.out_features = in_features, out_features
    self.vjp, self.dtype = vjp, dtype

  def __call__(self, x):
    x, w, b = dtypes.promote_dtype(
        (x, self.kernel[...], self.bias[...]), dtype=self.dtype
    )
    return functional.emit(
        self, functional.select(ops.linear, self.vjp)(x, w, b)
    )


class Conv(nnx.Module):
  """2-D convolution, NHWC inputs, HWIO ``kernel``; twin of ``nnx.Conv``.

  ``stride`` and ``padding`` (``'SAME'``, ``'VALID'`` or an int) are those of
  ``ops.conv2d``; ``dtype`` is the compute dtype, as in :class:`Linear`.
  """

  def __init__(
      self,
      in_features,
      out_features,
      kernel_size=3,
      *,
      stride=1,
      padding="SAME",
      vjp="manual",
      dtype=None,
      param_dtype=jnp.float32,
      kernel_init=default_kernel_init,
      bias_init=default_bias_init,
      rngs,
  ):
    functional.check_vjp_mode(vjp)
    kh, kw = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    shape = (kh, kw, in_features, out_features)
    self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
    self.bias = nnx.Param(
        bias_init(rngs.params(), (out_features,), param_dtype)
    )
    self.in_features, self.out_features = in_features, out_features
    self.stride, self.padding = stride, padding
    self.vjp, self.dtype = vjp, dtype

  def __call__(self, x, *, add_bias=True):
    """``add_bias=False`` leaves the bias out (for a caller that applies it
    itself, as :class:`~jaxbp.models.convnets.ConvBNReLU` does)."""
    x, w, b = dtypes.promote_dtype(
        (x, self.kernel[...], self.bias[...]), dtype=self.dtype
    )
    y = functional.select(ops.conv2d, self.vjp)(
        x, w, b if add_bias else None, self.stride, self.padding
    )
    return functional.emit(self, y)
