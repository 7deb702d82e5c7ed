"""Stateless layers (activations, pooling), the vjp switch and the output hook."""

import contextlib
import contextvars

from jaxbp import ops

VJPS = ("manual", "autodiff")


def check_vjp_mode(vjp):
  """Raises a ValueError unless ``vjp`` names a backward mode."""
  if vjp not in VJPS:
    raise ValueError(
        "vjp must be 'manual' (hand-written backward rules) or 'autodiff'"
        f" (JAX autodiff of the same forward), got {vjp!r}."
    )


def select(op, vjp):
  """Returns ``op`` for ``'manual'``, its plain forward for ``'autodiff'``.

  Both take the same arguments, so a layer calls ``select(op, self.vjp)(...)``
  and ``model.set_attributes(vjp='autodiff')`` switches a whole model.
  """
  check_vjp_mode(vjp)
  return op if vjp == "manual" else ops.plain(op)


# Who listens to the layers' outputs while a model is traced (models.summary).
_LISTENER = contextvars.ContextVar("jaxbp_nn_listener", default=None)


@contextlib.contextmanager
def listen(callback):
  """Calls ``callback(layer, y)`` with each layer's output inside the block.

  ``layer`` is the module, or the pooling function's name; nothing is patched,
  so other threads and the classes themselves are unaffected.
  """
  token = _LISTENER.set(callback)
  try:
    yield
  finally:
    _LISTENER.reset(token)


def emit(layer, y):
  """Returns ``y``, first showing it to the listener, if any."""
  callback = _LISTENER.get()
  if callback is not None:
    callback(layer, y)
  return y


# Activations and pooling carry no state: functions with a `vjp` switch.
def relu(x, *, vjp="manual"):
  return select(ops.relu, vjp)(x)


def leaky_relu(x, negative_slope=0.01, *, vjp="manual"):
  return select(ops.leaky_relu, vjp)(x, negative_slope)


def elu(x, alpha=1.0, *, vjp="manual"):
  return select(ops.elu, vjp)(x, alpha)


def tanh(x, *, vjp="manual"):
  return select(ops.tanh, vjp)(x)


def sigmoid(x, *, vjp="manual"):
  return select(ops.sigmoid, vjp)(x)


ACTIVATIONS = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "tanh": tanh,
    "sigmoid": sigmoid,
}


def max_pool2d(x, window=3, stride=2, padding=1, *, vjp="manual"):
  y = select(ops.max_pool2d, vjp)(x, window, stride, padding)
  return emit("max_pool2d", y)


def avg_pool2d(x, window=2, stride=2, padding=0, *, vjp="manual"):
  y = select(ops.avg_pool2d, vjp)(x, window, stride, padding)
  return emit("avg_pool2d", y)


def global_avg_pool(x, *, vjp="manual"):
  return emit("global_avg_pool", select(ops.global_avg_pool, vjp)(x))
