"""Proves hand-written backward rules against autodiff and finite differences.

``check_vjp`` checks one function; ``registry.CASES`` lists every op with
arguments; ``python -m jaxbp.gradcheck`` prints a table over all of them.
"""

from jaxbp.gradcheck import registry
from jaxbp.gradcheck.check import (
    ArgErrors,
    GradientCheckError,
    Result,
    check_vjp,
    float_args,
    fwd_bwd_seconds,
    is_float,
)
from jaxbp.gradcheck.registry import CASES, Case, register

__all__ = [
    "CASES",
    "ArgErrors",
    "Case",
    "GradientCheckError",
    "Result",
    "check_vjp",
    "float_args",
    "fwd_bwd_seconds",
    "is_float",
    "register",
    "registry",
]
