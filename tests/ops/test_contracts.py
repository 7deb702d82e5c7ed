"""Every op gets every contract, over the one table in jaxbp.gradcheck.table.

Outputs may be tuples (batch_norm_with_stats): cotangents are pytrees then.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util

from jaxbp import gradcheck
from jaxbp.gradcheck import jaxprs, table

each_case = pytest.mark.parametrize("case", table.CASES, ids=str)
STAT_CASES = [c for c in table.CASES if c.op in table.STATISTICS_OPS]


def _cotangent(y, seed=1):
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda y: jnp.asarray(
          rng.standard_normal(jnp.shape(y)), jnp.result_type(y)
      ),
      y,
  )


def _dot(ct, y):
  """The pairing <ct, y> of a cotangent and an output, pytrees allowed."""
  return sum(
      jnp.vdot(c, v)
      for c, v in zip(jax.tree.leaves(ct), jax.tree.leaves(y), strict=True)
  )


def _grads(f, diff, ct):
  return jax.grad(lambda *d: _dot(ct, f(*d)), range(len(diff)))(*diff)


@each_case
def test_vjp_matches_independent_reference_and_finite_differences(case, x64):
  args = case.build(dtype=jnp.float64)
  y, y_ref = jax.jit(lambda a: (case.fn(*a), case.ref(*a)))(args)
  for got, want in zip(jax.tree.leaves(y), jax.tree.leaves(y_ref), strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
  # Random cotangents and, for these small outputs, the full Jacobian against
  # autodiff of the reference (rel <= 1e-10); central differences at
  # h = 1e-5 within the seeds' relative 1e-5.
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


@each_case
def test_check_grads_second_order(case, x64):
  f, diff, _ = gradcheck.float_args(case.fn, case.build(dtype=jnp.float64))
  # Jitting f checks the same rule with one compilation per derivative order
  # instead of one per primitive.
  test_util.check_grads(jax.jit(f), diff, order=2, modes=["rev"])


@each_case
def test_jit_vmap_and_grad_of_jit_agree(case, x64):
  args0, args1 = case.build(0, jnp.float64), case.build(1, jnp.float64)
  f, diff, argnums = gradcheck.float_args(case.fn, args0)
  ct = _cotangent(jax.eval_shape(f, *diff))

  def loss_and_grads(*a):
    loss = lambda *a: _dot(ct, case.fn(*a))
    return jax.value_and_grad(loss, tuple(argnums))(*a)

  single = jax.jit(loss_and_grads)
  stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), args0, args1)
  batched = jax.jit(jax.vmap(loss_and_grads))(*stacked)
  for i, args in enumerate((args0, args1)):
    for got, want in zip(
        jax.tree.leaves(batched), jax.tree.leaves(single(*args)), strict=True
    ):
      np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-14)
  # Differentiating a jitted op: the rule must survive jit's staging.
  jit_f = jax.jit(f)
  grad_of_jit = _grads(jit_f, diff, ct)
  for got, want in zip(grad_of_jit, single(*args0)[1], strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def _value_and_grads(f, diff, ct):
  return jax.jit(lambda d, ct: (f(*d), _grads(f, d, ct)))(diff, ct)


@each_case
def test_float32_stays_float32_and_bfloat16_matches_it(case):
  args16 = case.build(dtype=jnp.bfloat16)
  args32 = [
      a.astype(jnp.float32) if gradcheck.is_float(a) else a for a in args16
  ]
  f16, diff16, _ = gradcheck.float_args(case.fn, args16)
  f32, diff32, _ = gradcheck.float_args(case.fn, args32)
  ct = _cotangent(jax.eval_shape(f32, *diff32))
  ct16 = jax.tree.map(
      lambda c, y: c.astype(y.dtype), ct, jax.eval_shape(f16, *diff16)
  )
  y16, grads16 = _value_and_grads(f16, diff16, ct16)
  y32, grads32 = _value_and_grads(f32, diff32, ct)
  y16, y32 = jax.tree.leaves(y16), jax.tree.leaves(y32)
  assert all(a.dtype == jnp.float32 for a in (*y32, *grads32))
  # The output and the gradients keep bf16; statistics an op also returns
  # (batch_norm_with_stats) are float32 by design.
  dtypes = [jnp.bfloat16, *[jnp.float32] * (len(y16) - 1)]
  dtypes += [jnp.bfloat16] * len(grads16)
  got_want = zip([*y16, *grads16], [*y32, *grads32], dtypes, strict=True)
  for got, want, dtype in got_want:
    assert got.dtype == dtype
    err = jnp.max(jnp.abs(got.astype(jnp.float32) - want))
    assert err <= 2e-2 * jnp.max(jnp.abs(want)) + 1e-3


def _reductions(jaxpr):
  for eqn in jaxprs.eqns(jaxpr):
    if eqn.primitive.name.startswith(("reduce_", "argmax", "argmin")):
      yield eqn


@pytest.mark.parametrize("case", STAT_CASES, ids=str)
def test_bfloat16_statistics_are_reduced_in_float32(case):
  f, diff, _ = gradcheck.float_args(case.fn, case.build(dtype=jnp.bfloat16))
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
  calls = jaxprs.custom_vjp_calls(jaxpr)
  assert len(calls) == 1
  assert f"name={case.op.__name__}" in str(jaxpr)
  assert jaxprs.backward_rule(calls[0]) is case.op.bwd
  assert case.op.bwd.__name__ == f"_{case.op.__name__}_bwd"


@each_case
def test_grad_runs_the_hand_written_backward(case, monkeypatch):
  f, diff, _ = gradcheck.float_args(case.fn, case.build(dtype=jnp.float32))
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
