"""Every op gets every contract, over the table in tests/ops/cases.py."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util

from jaxbp import gradcheck
from tests.ops import cases

each_case = pytest.mark.parametrize("case", cases.CASES, ids=str)
STAT_CASES = [c for c in cases.CASES if c.op in cases.STATISTICS_OPS]


def _is_float(a) -> bool:
  return jnp.issubdtype(jnp.result_type(a), jnp.floating)


def _split(fn, args):
  """Returns (fn of the float args, the float args, their indices)."""
  argnums = [i for i, a in enumerate(args) if _is_float(a)]

  def f(*diff):
    full = list(args)
    for i, d in zip(argnums, diff, strict=True):
      full[i] = d
    return fn(*full)

  return f, [args[i] for i in argnums], argnums


def _cotangent(y, seed=1):
  ct = np.random.default_rng(seed).standard_normal(jnp.shape(y))
  return jnp.asarray(ct, jnp.result_type(y))


def _grads(f, diff, ct):
  return jax.grad(lambda *d: jnp.vdot(ct, f(*d)), range(len(diff)))(*diff)


@each_case
def test_vjp_matches_independent_reference_and_finite_differences(case, x64):
  args = case.build(dtype=jnp.float64)
  np.testing.assert_allclose(
      case.fn(*args), case.ref(*args), rtol=1e-12, atol=1e-12
  )
  # Full Jacobian against autodiff of the reference (rel <= 1e-10), and
  # central differences at h = 1e-5 within the seeds' relative 1e-5.
  result = gradcheck.check_vjp(
      case.op,
      *args,
      static=case.static,
      reference=case.reference,
      rtol=1e-10,
      fd_rtol=1e-5,
      eps=1e-5,
  )
  assert result.autodiff_rel <= 1e-10 and result.fd_rel <= 1e-5
  # Random cotangents too, the way a training step calls the rule.
  f, diff, _ = _split(case.fn, args)
  ref = _split(case.ref, args)[0]
  for seed in range(2):
    ct = _cotangent(f(*diff), seed)
    for got, want in zip(
        _grads(f, diff, ct), _grads(ref, diff, ct), strict=True
    ):
      scale = float(jnp.max(jnp.abs(want)))
      assert float(jnp.max(jnp.abs(got - want))) <= 1e-10 * scale + 1e-15


@each_case
def test_check_grads_second_order(case, x64):
  f, diff, _ = _split(case.fn, case.build(dtype=jnp.float64))
  test_util.check_grads(f, diff, order=2, modes=["rev"])


@each_case
def test_jit_vmap_and_grad_of_jit_agree_with_eager(case, x64):
  args0, args1 = case.build(0, jnp.float64), case.build(1, jnp.float64)
  f, diff, argnums = _split(case.fn, args0)
  y = f(*diff)
  ct = _cotangent(y)
  np.testing.assert_allclose(jax.jit(f)(*diff), y, rtol=1e-13)
  jit_f = jax.jit(f)
  for got, want in zip(
      _grads(jit_f, diff, ct), _grads(f, diff, ct), strict=True
  ):
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)

  def loss_and_grads(*a):
    return jax.value_and_grad(
        lambda *a: jnp.vdot(ct, case.fn(*a)), tuple(argnums)
    )(*a)

  stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), args0, args1)
  batched = jax.vmap(loss_and_grads)(*stacked)
  for i, args in enumerate((args0, args1)):
    single = loss_and_grads(*args)
    for got, want in zip(
        jax.tree.leaves(batched), jax.tree.leaves(single), strict=True
    ):
      np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-14)


@each_case
def test_float32_in_float32_out(case):
  f, diff, _ = _split(case.fn, case.build(dtype=jnp.float32))
  y = f(*diff)
  assert y.dtype == jnp.float32
  for g in _grads(f, diff, _cotangent(y)):
    assert g.dtype == jnp.float32


@each_case
def test_bfloat16_matches_float32_within_bfloat16_tolerance(case):
  args16 = case.build(dtype=jnp.bfloat16)
  args32 = [a.astype(jnp.float32) if _is_float(a) else a for a in args16]
  f16, diff16, _ = _split(case.fn, args16)
  f32, diff32, _ = _split(case.fn, args32)
  y16, y32 = f16(*diff16), f32(*diff32)
  assert y16.dtype == jnp.bfloat16
  ct = _cotangent(y32)
  pairs = [(y16, y32)] + list(
      zip(
          _grads(f16, diff16, ct.astype(jnp.bfloat16)),
          _grads(f32, diff32, ct),
          strict=True,
      )
  )
  for got, want in pairs:
    assert got.dtype == jnp.bfloat16
    err = jnp.max(jnp.abs(got.astype(jnp.float32) - want))
    assert err <= 2e-2 * jnp.max(jnp.abs(want)) + 1e-3


def _reductions(jaxpr):
  for eqn in jaxpr.eqns:
    if eqn.primitive.name.startswith(("reduce_", "argmax", "argmin")):
      yield eqn
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      yield from _reductions(sub)


@pytest.mark.parametrize("case", STAT_CASES, ids=str)
def test_bfloat16_statistics_are_reduced_in_float32(case):
  f, diff, _ = _split(case.fn, case.build(dtype=jnp.bfloat16))
  ct = _cotangent(f(*diff))
  for fn in (f, lambda *d: _grads(f, d, ct)):
    eqns = list(_reductions(jax.make_jaxpr(fn)(*diff).jaxpr))
    assert eqns
    for eqn in eqns:
      assert eqn.invars[0].aval.dtype == jnp.float32, eqn


@each_case
def test_custom_rule_is_in_the_jaxpr(case):
  args = case.build(dtype=jnp.float32)
  jaxpr = jax.make_jaxpr(case.fn)(*args)
  calls = [e for e in jaxpr.eqns if e.primitive.name == "custom_vjp_call"]
  assert len(calls) == 1
  assert f"name={case.op.__name__}" in str(jaxpr)
  assert calls[0].params["bwd"].f is case.op.bwd
  assert case.op.bwd.__name__ == f"_{case.op.__name__}_bwd"


@each_case
def test_grad_runs_the_hand_written_backward(case, monkeypatch):
  f, diff, _ = _split(case.fn, case.build(dtype=jnp.float32))
  ct = _cotangent(f(*diff))
  before = _grads(f, diff, ct)
  original = case.op.bwd

  def doubled(*a):
    return tuple(None if c is None else 2 * c for c in original(*a))

  monkeypatch.setattr(case.op, "bwd", doubled)
  for got, want in zip(_grads(f, diff, ct), before, strict=True):
    np.testing.assert_array_equal(got, 2 * want)


@each_case
def test_integer_input_raises_type_error(case):
  args = case.build(dtype=jnp.float32)
  args[0] = jnp.ones(jnp.shape(args[0]), jnp.int32)
  with pytest.raises(TypeError, match=r"int32.*shape"):
    case.fn(*args)
