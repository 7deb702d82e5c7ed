"""Which primitives and hand-written rules a traced function runs.

The tests use these to prove that a custom rule is (or is not) in a program.
They walk sub-jaxprs by duck typing, since ``jax.extend.core.jaxprs_in_params``
is missing in jax 0.7.2, and accept both names the custom-VJP primitive has had
(``custom_vjp_call`` now, ``custom_vjp_call_jaxpr`` in older JAX).
"""

import contextlib
from collections.abc import Callable, Iterator

import jax

from jaxbp import ops

CUSTOM_VJP_PRIMITIVES = ("custom_vjp_call", "custom_vjp_call_jaxpr")


def _sub_jaxprs(params) -> Iterator:
  for value in params.values():
    for v in value if isinstance(value, tuple | list) else (value,):
      if hasattr(v, "eqns"):  # a Jaxpr
        yield v
      elif hasattr(getattr(v, "jaxpr", None), "eqns"):  # a ClosedJaxpr
        yield v.jaxpr


def eqns(jaxpr) -> Iterator:
  """Yields every equation of ``jaxpr`` (open or closed), nested ones too."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  for eqn in jaxpr.eqns:
    yield eqn
    for sub in _sub_jaxprs(eqn.params):
      yield from eqns(sub)


def primitives(fn: Callable, *args) -> set[str]:
  """The names of the primitives ``fn(*args)`` traces to, nested ones too."""
  return {e.primitive.name for e in eqns(jax.make_jaxpr(fn)(*args))}


def custom_vjp_calls(jaxpr) -> list:
  """The custom-VJP equations in ``jaxpr``, nested ones too, in order."""
  return [e for e in eqns(jaxpr) if e.primitive.name in CUSTOM_VJP_PRIMITIVES]


def backward_rule(eqn) -> Callable:
  """The hand-written backward function a custom-VJP equation will call."""
  bwd = eqn.params["bwd"]
  return getattr(bwd, "f", bwd)  # A linear_util.WrappedFun around it.


def custom_rules(fn: Callable, *args) -> list[Callable]:
  """The backward rules of the custom-VJP ops the forward ``fn(*args)`` calls.

  A forward's jaxpr names them; a gradient's jaxpr does not (the rule is
  traced inline), so to see which rules a train step runs use
  :func:`record_backwards`.
  """
  return [backward_rule(e) for e in custom_vjp_calls(jax.make_jaxpr(fn)(*args))]


def _all_ops() -> dict[str, Callable]:
  return {
      name: getattr(ops, name)
      for name in ops.__all__
      if hasattr(getattr(ops, name), "bwd")
  }


@contextlib.contextmanager
def record_backwards() -> Iterator[list[str]]:
  """Records the names of the ``jaxbp.ops`` whose backward rule runs (traces).

  ``with record_backwards() as names: jax.make_jaxpr(train_step)(...)`` leaves
  in ``names`` one entry per hand-written backward traced. Each op's ``bwd``
  is wrapped for the duration of the block and restored after it.
  """
  names, found = [], _all_ops()
  originals = {name: op.bwd for name, op in found.items()}

  def spy(name, bwd):
    def call(*args):
      names.append(name)
      return bwd(*args)

    return call

  try:
    for name, op in found.items():
      op.bwd = spy(name, originals[name])
    yield names
  finally:
    for name, op in found.items():
      op.bwd = originals[name]
