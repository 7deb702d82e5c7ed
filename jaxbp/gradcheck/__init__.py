"""Proves hand-written backward rules against autodiff and finite differences.

``check_vjp`` checks one function; ``table.CASES`` lists every op with its
reference and arguments; ``python -m jaxbp.gradcheck`` prints a table over
all of them; ``jaxprs`` finds the custom rules in a traced program.
"""

from jaxbp.gradcheck import jaxprs, references, results, table
from jaxbp.gradcheck.check import check_vjp, float_args, is_float
from jaxbp.gradcheck.results import ArgErrors, GradientCheckError, Result
from jaxbp.gradcheck.table import CASES, Case
from jaxbp.gradcheck.timing import fwd_bwd_seconds, median_times

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
    "jaxprs",
    "median_times",
    "references",
    "results",
    "table",
]
