"""jaxbp: backprop by hand, at full speed."""

# First: XLA reads its flags when the backend starts (see _xla_flags).
from jaxbp import _xla_flags  # noqa: F401, I001

from jaxbp import gradcheck, models, nn, ops

__all__ = ["gradcheck", "models", "nn", "ops"]
