"""check_vjp: a hand-written backward against autodiff and finite differences."""

import contextlib
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import _compat, ops
from jaxbp.gradcheck import results


def _name(fn) -> str:
  fn = getattr(fn, "func", fn)  # functools.partial
  return getattr(fn, "__name__", repr(fn))


def _arg_names(fn, n: int) -> list[str]:
  try:
    params = list(inspect.signature(getattr(fn, "fun", fn)).parameters)
  except (TypeError, ValueError):
    params = []
  return [params[i] if i < len(params) else f"arg{i}" for i in range(n)]


def is_float(x) -> bool:
  """Whether `x` has a floating dtype, and so gets a cotangent."""
  return x is not None and jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _restrict(f, args, argnums):
  """Returns `f` as a function of `args[argnums]`, the other args held fixed."""

  def g(*diff):
    full = list(args)
    for i, d in zip(argnums, diff, strict=True):
      full[i] = d
    return f(*full)

  return g


def float_args(fn, args):
  """Splits `fn(*args)` into a function of its floating arguments.

  Returns `(f, floats, argnums)`: `f(*floats) == fn(*args)`, with the
  non-floating arguments (integer labels, PRNG keys) held fixed, since they
  get no cotangent.
  """
  argnums = [i for i, a in enumerate(args) if is_float(a)]
  return _restrict(fn, args, argnums), [args[i] for i in argnums], argnums


def _basis_and_random(rng, shape, limit: int, count: int) -> np.ndarray:
  """`count` random directions in `shape`, led by every unit vector when the
  space has at most `limit` dimensions."""
  random = rng.standard_normal((count, *shape))
  size = int(np.prod(shape))
  if size > limit:
    return random
  return np.concatenate([np.eye(size).reshape(size, *shape), random])


def check_vjp(
    fn: Callable,
    *args: Any,
    argnums: Sequence[int] | None = None,
    static: dict[str, Any] | None = None,
    reference: Callable | None = None,
    dtype=jnp.float64,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    fd_rtol: float = 1e-5,
    fd_atol: float = 1e-10,
    eps: float = 1e-5,
    max_jacobian: int = 256,
    num_random: int = 4,
    seed: int = 0,
    raise_on_error: bool = True,
) -> results.Result:
  r"""Compares ``jax.vjp(fn)``, i.e. the hand-written rule, with two oracles.

  In ``dtype`` (float arguments are cast): (a) autodiff of the plain forward
  ``reference`` at the same cotangents; (b) central finite differences
  :math:`u^\top (f(x + \epsilon v) - f(x - \epsilon v)) / 2\epsilon` against
  :math:`\langle \bar{x}(u), v \rangle` for a random cotangent :math:`u`.
  The cotangents of (a) and each argument's directions :math:`v` in (b) are
  ``num_random`` random ones, plus every unit vector (the full Jacobian)
  when the output, resp. the argument, has at most ``max_jacobian`` entries.
  An argument passes when ``max|err| <= atol + rtol * max|oracle|``
  (``fd_atol``, ``fd_rtol`` for (b)). Outputs may be tuples (pytrees) of
  arrays: they are compared as one flat vector.

  Args:
    fn: the op (a ``jax.custom_vjp``) or, with ``reference``, any function.
    *args: its array arguments; integer ones (labels, keys) are held fixed.
    argnums: which arguments to differentiate; default every float one.
    static: keyword hyperparameters passed to both ``fn`` and ``reference``.
    reference: the plain forward autodiff differentiates, ``ops.plain(fn)``
      by default; required when ``fn`` is not a ``jax.custom_vjp``.
    dtype: ``jnp.float64`` (on the CPU where the default backend has none,
      e.g. TPU) or ``jnp.float32`` (give looser tolerances and a larger
      ``eps``); both at ``jax.default_matmul_precision('highest')``.
    rtol, atol, fd_rtol, fd_atol: tolerances, see above.
    eps: finite-difference step.
    max_jacobian, num_random: exhaustive versus random probing, see above.
    seed: seeds the random cotangents and directions.
    raise_on_error: raise :class:`GradientCheckError` past tolerance.

  Returns:
    A :class:`Result` with per-argument max absolute and relative errors.
  """
  name = _name(fn)
  reference = _checked_reference(fn, name, reference)
  tol = results.Tolerances(rtol, atol, fd_rtol, fd_atol, eps)
  probes = (max_jacobian, num_random)
  result = _measure(
      name, fn, reference, args, argnums, static, dtype, tol, probes, seed
  )
  if result.failures and raise_on_error:
    raise results.GradientCheckError("\n".join(result.failures))
  return result


def _checked_reference(fn, name, reference):
  """Returns ``reference``, by default the plain forward of ``fn``; raises
  when ``fn`` is no ``jax.custom_vjp`` and so needs one given."""
  if reference is None and not hasattr(fn, "fun"):
    raise TypeError(
        f"check_vjp: {name} is not a jax.custom_vjp, so it has no"
        " hand-written backward of its own to check; pass reference=<its"
        " plain forward> to check a function built from custom_vjp ops."
    )
  return reference or ops.plain(fn)


def _measure(
    name, fn, reference, args, argnums, static, dtype, tol, probes, seed
):
  """Runs both oracles on ``args`` in ``dtype`` and compares them with the
  rule: the :class:`Result`, failures not yet raised."""
  with _where(dtype) as device:
    args = [_place(a, dtype, device) for a in args]
    if argnums is None:
      argnums = [i for i, a in enumerate(args) if is_float(a)]
    names = _arg_names(fn, len(args))
    static = static or {}
    manual = _restrict(_flat(functools.partial(fn, **static)), args, argnums)
    plain = _restrict(
        _flat(functools.partial(reference, **static)), args, argnums
    )
    diff = [args[i] for i in argnums]
    rng = np.random.default_rng(seed)
    got, want, dx, fds, directions = _oracles(
        manual, plain, diff, rng, probes, tol.eps, dtype
    )
    labels = [(names[i], tuple(args[i].shape)) for i in argnums]
    arg_errors, failures = results.compare(
        name, labels, got, want, dx, fds, directions, tol
    )
  return results.Result(name, tuple(arg_errors), tuple(failures))


def _oracles(manual, plain, diff, rng, probes, eps, dtype):
  """Returns both sides of both comparisons: manual and autodiff VJPs of the
  probing cotangents, manual's VJP at one random u, the finite differences
  of u^T f along the probing directions, and those directions."""
  size = jax.eval_shape(manual, *diff).shape
  cts = _basis_and_random(rng, size, *probes).astype(dtype)
  u = rng.standard_normal(size).astype(dtype)
  # One compiled program per oracle: eager vmap would compile every
  # primitive separately, which dominates the cost on small inputs.
  got, want, dx = _vjps(manual, plain, diff, cts, u)
  directions = [
      _basis_and_random(rng, x.shape, *probes).astype(dtype) for x in diff
  ]
  fds = _central_differences(manual, diff, u, directions, eps)
  return got, want, dx, fds, directions


@contextlib.contextmanager
def _where(dtype):
  """Enters float64 or float32, at the highest matmul precision; yields the
  device arguments go to (None: the default).

  float64 runs on the CPU device when the default backend has no float64
  (TPU), on the default device otherwise; float32 on the default device. The
  highest matmul precision keeps a GPU's TF32 or a TPU's bf16 passes from
  passing for errors in the rule.
  """
  wide = jnp.dtype(dtype) == jnp.float64
  device = _compat.float64_device() if wide else None
  x64 = _compat.enable_x64(True) if wide else contextlib.nullcontext()
  with x64, jax.default_device(device), jax.default_matmul_precision("highest"):
    yield device


def _place(a, dtype, device):
  """Casts a float argument to ``dtype`` on the default device; moves the
  others (labels, keys) to ``device`` when one is given."""
  if a is None:  # An absent optional argument, e.g. no bias.
    return a
  if is_float(a):
    return jnp.asarray(np.asarray(a, np.float64), dtype)
  return jax.device_put(a, device) if device else jnp.asarray(a)


def _flat(f):
  """``f`` with its output (an array or a pytree of them) as one flat vector."""

  def flat(*args):
    leaves = jax.tree.leaves(f(*args))
    return jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])

  return flat


@functools.partial(jax.jit, static_argnums=(0, 1))
def _vjps(manual, plain, diff, cts, u):
  """Returns manual and autodiff VJPs of every cotangent, and manual's at u."""
  _, vjp_manual = jax.vjp(manual, *diff)
  _, vjp_plain = jax.vjp(plain, *diff)
  return jax.vmap(vjp_manual)(cts), jax.vmap(vjp_plain)(cts), vjp_manual(u)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _central_differences(f, diff, u, directions, eps):
  r"""Returns :math:`u^\top (f(x + \epsilon v) - f(x - \epsilon v)) / 2\epsilon`
  for every direction :math:`v` of every argument, one argument at a time."""

  def along(k, v):
    def at(x_k):
      return f(*diff[:k], x_k, *diff[k + 1 :])

    return jnp.vdot(u, at(diff[k] + eps * v) - at(diff[k] - eps * v)) / (
        2 * eps
    )

  return [
      jax.vmap(functools.partial(along, k))(v) for k, v in enumerate(directions)
  ]
