"""jaxbp: backprop by hand, at full speed."""

from jaxbp import gradcheck, models, nn, ops

__all__ = ["gradcheck", "models", "nn", "ops"]
