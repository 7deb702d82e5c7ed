"""What check_vjp measured: per-argument errors, tolerances, failure lines."""

import dataclasses

import numpy as np


class GradientCheckError(AssertionError):
  """A hand-written backward disagrees with autodiff or finite differences."""


@dataclasses.dataclass(frozen=True)
class ArgErrors:
  """Max errors of one differentiated argument's cotangent.

  Relative errors are normwise: the max absolute error divided by the max
  magnitude of the trusted value (autodiff, resp. the finite differences).
  """

  name: str
  shape: tuple[int, ...]
  autodiff_abs: float
  autodiff_rel: float
  fd_abs: float
  fd_rel: float


@dataclasses.dataclass(frozen=True)
class Result:
  """What :func:`check_vjp` measured, one entry per differentiated argument."""

  op: str
  args: tuple[ArgErrors, ...]
  failures: tuple[str, ...]

  @property
  def ok(self) -> bool:
    return not self.failures

  @property
  def autodiff_rel(self) -> float:
    return max((a.autodiff_rel for a in self.args), default=0.0)

  @property
  def fd_rel(self) -> float:
    return max((a.fd_rel for a in self.args), default=0.0)


@dataclasses.dataclass(frozen=True)
class Tolerances:
  """Pass when max|err| <= atol + rtol * max|oracle| (fd_ for finite
  differences taken with step eps)."""

  rtol: float
  atol: float
  fd_rtol: float
  fd_atol: float
  eps: float


def _max_abs(x) -> float:
  x = np.asarray(x)
  return float(np.max(np.abs(x))) if x.size else 0.0


def _errors(got, want) -> tuple[float, float]:
  err = _max_abs(np.asarray(got) - np.asarray(want))
  return err, err / max(_max_abs(want), np.finfo(np.float64).tiny)


def compare(name, labels, got, want, dx, fds, directions, tol):
  """Returns the per-argument errors and the messages of those past tolerance."""
  arg_errors, failures = [], []
  for k, (arg, shape) in enumerate(labels):
    ad_abs, ad_rel = _errors(got[k], want[k])
    fd = np.asarray(fds[k])
    pred = np.tensordot(
        np.asarray(directions[k]), np.asarray(dx[k]), dx[k].ndim
    )
    fd_abs, fd_rel = _errors(pred, fd)
    arg_errors.append(ArgErrors(arg, shape, ad_abs, ad_rel, fd_abs, fd_rel))
    label = f"{arg} {shape}"
    if not ad_abs <= tol.atol + tol.rtol * _max_abs(want[k]):
      failures.append(
          f"{name}: argument {label}: max |manual - autodiff| = {ad_abs:.3e}"
          f" (relative {ad_rel:.3e}) exceeds atol={tol.atol:g} +"
          f" rtol={tol.rtol:g}"
      )
    if not fd_abs <= tol.fd_atol + tol.fd_rtol * _max_abs(fd):
      failures.append(
          f"{name}: argument {label}: max |manual - finite differences| ="
          f" {fd_abs:.3e} (relative {fd_rel:.3e}, eps={tol.eps:g}) exceeds"
          f" atol={tol.fd_atol:g} + rtol={tol.fd_rtol:g}"
      )
  return arg_errors, failures
