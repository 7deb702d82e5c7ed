"""jaxbp: backprop by hand, at full speed."""

from jaxbp import gradcheck, ops

__all__ = ["gradcheck", "ops"]
