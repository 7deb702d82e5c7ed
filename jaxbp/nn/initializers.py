r"""The seeds' weight initializations by name, for ``Linear`` and ``Conv``.

``layer_inits(name, fan_in, std)`` gives the ``kernel_init`` and ``bias_init``
keyword arguments of one layer; with fans :math:`n_{in}` (inputs per output,
the receptive field included for a conv) and :math:`n_{out}`:

- ``'default'``: the layers' own defaults, Flax's (``nnx.Linear``'s):
  truncated-normal LeCun weights (variance :math:`1 / n_{in}` after
  truncation at two standard deviations), zero biases.
- ``'lecun'``: :math:`W \sim \mathcal{N}(0, 1 / n_{in})`, untruncated, zero
  biases (``np.random.randn(...) * np.sqrt(1 / n_in)``).
- ``'kaiming'``: He normal, :math:`W \sim \mathcal{N}(0, 2 / n_{in})`,
  untruncated as in PyTorch's ``kaiming_normal_``, zero biases (the 2021
  NumPy MLP's).
- ``'normal'``: :math:`W \sim \mathcal{N}(0, \sigma^2)` with
  :math:`\sigma` = ``std``, zero biases (the 2019 NumPy MLP's, 1e-4).
- ``'vugrad'``: :math:`W = \frac{2}{n_{in} + n_{out}} Z`,
  :math:`Z \sim \mathcal{N}(0, 1)`, zero biases (vugrad's ``Linear``: a
  standard deviation, not a variance, of :math:`2 / (n_{in} + n_{out})`).
- ``'pytorch'``: PyTorch's ``nn.Linear``/``nn.Conv2d`` default: weights and
  biases :math:`\mathcal{U}(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})`.
"""

import math

import jax
import jax.numpy as jnp
from flax.nnx.nn import initializers

KERNEL_INITS = ("default", "lecun", "kaiming", "normal", "vugrad", "pytorch")


def check(name: str, std=None) -> None:
  """Raises a one-line ValueError for an unknown name or a bad ``std``."""
  if name not in KERNEL_INITS:
    raise ValueError(
        f"kernel_init={name!r} is unknown; use one of"
        f' {", ".join(KERNEL_INITS)}.'
    )
  if name == "normal" and (
      isinstance(std, bool) or not isinstance(std, int | float) or std <= 0
  ):
    raise ValueError(
        "kernel_init='normal' needs a standard deviation init_std > 0, got"
        f" {std!r}."
    )


def _fans(shape):
  """(fan_in, fan_out) of a ``(in, out)`` or HWIO kernel, as Flax counts."""
  receptive = math.prod(shape[:-2])
  return shape[-2] * receptive, shape[-1] * receptive


def _vugrad(key, shape, dtype=jnp.float32):
  fan_in, fan_out = _fans(shape)
  return jax.random.normal(key, shape, dtype) * (2.0 / (fan_in + fan_out))


def layer_inits(name: str, fan_in: int, std=None) -> dict:
  """``kernel_init``/``bias_init`` keywords for a layer of ``fan_in`` inputs.

  ``'default'`` gives no keywords, so the layer keeps its own defaults (and
  draws exactly what it drew before this option existed).
  """
  check(name, std)
  zeros = initializers.zeros_init()
  if name == "default":
    return {}
  if name == "pytorch":
    bound = 1.0 / math.sqrt(fan_in)
    return {
        # A uniform of variance scale / fan_in has bound sqrt(3 scale / fan_in).
        "kernel_init": initializers.variance_scaling(
            1 / 3, "fan_in", "uniform"
        ),
        "bias_init": lambda key, shape, dtype=jnp.float32: jax.random.uniform(
            key, shape, dtype, -bound, bound
        ),
    }
  kernels = {
      "lecun": lambda: initializers.variance_scaling(1.0, "fan_in", "normal"),
      "kaiming": lambda: initializers.variance_scaling(2.0, "fan_in", "normal"),
      "normal": lambda: initializers.normal(std),
      "vugrad": lambda: _vugrad,
  }
  return {"kernel_init": kernels[name](), "bias_init": zeros}
