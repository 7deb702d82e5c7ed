"""check_vjp passes correct rules, catches wrong ones, and the CLI reports."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import gradcheck, ops
from jaxbp.gradcheck import __main__ as cli


def _sin_with_bwd(scale):
  """A custom_vjp sin whose backward is `scale` times the true one."""

  @jax.custom_vjp
  def sin(x):
    return jnp.sin(x)

  sin.defvjp(
      lambda x: (jnp.sin(x), x), lambda x, dy: (scale * jnp.cos(x) * dy,)
  )
  return sin


X = np.linspace(-1.0, 1.0, 6)


def test_passes_a_correct_rule_and_reports_per_argument_errors():
  result = gradcheck.check_vjp(
      ops.linear, np.ones((3, 4)), np.ones((4, 2)), np.ones(2)
  )
  assert result.ok and result.op == "linear"
  assert [(a.name, a.shape) for a in result.args] == [
      ("x", (3, 4)),
      ("w", (4, 2)),
      ("b", (2,)),
  ]
  assert result.autodiff_rel <= 1e-12 and result.fd_rel <= 1e-8


def test_integer_arguments_are_held_fixed():
  result = gradcheck.check_vjp(
      ops.softmax_cross_entropy, np.ones((4, 3)), np.array([0, 1, 2, 0])
  )
  assert [a.name for a in result.args] == ["logits"]


@pytest.mark.parametrize("max_jacobian", [256, 0])  # exhaustive, random
def test_raises_on_a_wrong_backward_naming_op_argument_and_tolerance(
    max_jacobian,
):
  wrong = _sin_with_bwd(1.001)
  with pytest.raises(
      gradcheck.GradientCheckError,
      match=r"sin: argument x \(6,\): max \|manual - autodiff\| = .* exceeds"
      r" atol=1e-12 \+ rtol=1e-09",
  ):
    gradcheck.check_vjp(wrong, X, reference=jnp.sin, max_jacobian=max_jacobian)


def test_finite_differences_catch_a_rule_autodiff_cannot():
  wrong = _sin_with_bwd(1.001)
  # With the wrong rule as its own reference, only finite differences know.
  result = gradcheck.check_vjp(wrong, X, reference=wrong, raise_on_error=False)
  assert result.args[0].autodiff_abs == 0
  assert len(result.failures) == 1
  assert "max |manual - finite differences|" in result.failures[0]
  assert result.fd_rel == pytest.approx(1e-3, rel=1e-2)


def test_passes_the_true_rule_with_an_explicit_reference():
  result = gradcheck.check_vjp(_sin_with_bwd(1.0), X, reference=jnp.sin)
  assert result.ok


def test_register_adds_a_row_the_cli_reports(monkeypatch, capsys):
  monkeypatch.setattr(gradcheck.registry, "CASES", [])
  off_kink = gradcheck.registry.off_kink
  gradcheck.register(
      "leaky_relu",
      ops.leaky_relu,
      lambda r: (off_kink(r, 4, 5),),
      negative_slope=0.2,
  )
  # Its plain forward (`op.fun`) is jnp.sin, so autodiff exposes the rule.
  gradcheck.register("sin_wrong", _sin_with_bwd(1.001), lambda r: (X,))
  case, _ = gradcheck.registry.CASES
  assert case.static == {"negative_slope": 0.2}
  assert case.build()[0].shape == (4, 5)
  cli.flags.FLAGS(["gradcheck", "--repeats=1"])
  assert cli.main([]) == 1
  out = capsys.readouterr().out
  assert "| leaky_relu | 4x5 negative_slope=0.2 |" in out
  assert "| sin_wrong FAIL |" in out and "1 of 2 checks failed." in out


@pytest.mark.parametrize(
    "case", gradcheck.CASES, ids=lambda c: c.name.replace(" ", "_")
)
def test_every_registered_case_is_within_tolerance(case):
  gradcheck.check_vjp(case.op, *case.build(), static=case.static)
