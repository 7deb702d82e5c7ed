"""check_vjp passes correct rules, catches wrong ones, and the CLI reports."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import _compat, gradcheck, ops
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


def test_a_table_row_is_what_the_cli_reports(monkeypatch, capsys):
  rows = [
      gradcheck.Case(
          "leaky_relu",
          ops.leaky_relu,
          jax.nn.leaky_relu,
          (gradcheck.table.off_kink,),
          ((4, 5),),
          {"negative_slope": 0.2},
      ),
      # Its plain forward (`op.fun`) is jnp.sin, so autodiff exposes the rule.
      gradcheck.Case(
          "sin_wrong", _sin_with_bwd(1.001), jnp.sin, (lambda r, s: X,), ((),)
      ),
  ]
  monkeypatch.setattr(gradcheck.table, "CASES", rows)
  case, _ = gradcheck.table.CASES
  assert case.static == {"negative_slope": 0.2}
  assert case.build()[0].shape == (4, 5)
  cli.flags.FLAGS(["gradcheck", "--repeats=1"])
  assert cli.main([]) == 1
  out = capsys.readouterr().out
  assert "| leaky_relu | 4x5 negative_slope=0.2 |" in out
  assert "| sin_wrong FAIL |" in out and "1 of 2 checks failed." in out


def test_cli_rejects_an_unknown_op_listing_the_known_ones(capsys):
  cli.flags.FLAGS(["gradcheck", "--ops=relu,batchnorm", "--repeats=1"])
  try:
    assert cli.main([]) == 2
  finally:
    cli.flags.FLAGS(["gradcheck", "--ops=", "--repeats=20"])
  captured = capsys.readouterr()
  assert captured.out == ""  # Nothing checked, no "All 0 checks" pass.
  (line,) = captured.err.strip().splitlines()
  assert "unknown op 'batchnorm'" in line
  assert "batch_norm, batch_norm_with_stats, conv2d" in line


def test_cli_exits_non_zero_on_an_unknown_op_without_a_traceback():
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
  run = subprocess.run(
      [sys.executable, "-m", "jaxbp.gradcheck", "--ops=batchnorm"],
      capture_output=True,
      text=True,
      env=env,
      timeout=120,
      check=False,
  )
  assert run.returncode == 2 and run.stdout == ""
  (line,) = run.stderr.strip().splitlines()
  assert line.startswith("gradcheck: unknown op 'batchnorm'; known ops:")


def test_cli_selects_rows_by_op_name(capsys):
  cli.flags.FLAGS(["gradcheck", "--ops=linear", "--repeats=1"])
  try:
    assert cli.main([]) == 0
  finally:
    cli.flags.FLAGS(["gradcheck", "--ops=", "--repeats=20"])
  out = capsys.readouterr().out
  assert "| linear |" in out and "| linear_3d |" in out
  assert "All 2 checks within tolerance." in out


def test_a_plain_function_needs_a_reference_and_says_so():
  with pytest.raises(
      TypeError, match=r"^check_vjp: sin is not a jax.custom_vjp"
  ):
    gradcheck.check_vjp(jnp.sin, X)
  with pytest.raises(
      TypeError, match=r"ops.plain: sin is not a jax.custom_vjp"
  ):
    ops.plain(jnp.sin)


def test_a_function_of_ops_checks_against_its_reference():
  def mlp(x, w):
    return ops.tanh(ops.linear(x, w, None))

  rng = np.random.default_rng(0)
  x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
  result = gradcheck.check_vjp(
      mlp, x, w, reference=lambda x, w: jnp.tanh(x @ w)
  )
  assert result.ok and [a.name for a in result.args] == ["x", "w"]


def test_tuple_outputs_are_checked_as_one_vector():
  x = np.random.default_rng(0).standard_normal((5, 3))
  result = gradcheck.check_vjp(
      ops.batch_norm_with_stats,
      x,
      np.ones(3),
      np.zeros(3),
      reference=gradcheck.references.batch_norm_with_stats,
  )
  assert result.ok and result.autodiff_rel <= 1e-12


def test_float32_checks_run_on_the_default_device_at_highest_precision():
  wrong = _sin_with_bwd(1.01)
  kw = dict(dtype=jnp.float32, rtol=1e-5, atol=1e-6, fd_rtol=1e-2, eps=1e-2)
  rng = np.random.default_rng(0)
  args = rng.standard_normal((16, 32)), rng.standard_normal((32, 8))
  assert gradcheck.check_vjp(ops.linear, *args, None, **kw).ok
  result = gradcheck.check_vjp(
      wrong, X, reference=jnp.sin, raise_on_error=False, **kw
  )
  assert not result.ok


def test_float64_checks_run_where_float64_exists():
  # On a TPU the float64 work moves to the CPU device; elsewhere it stays.
  device = _compat.float64_device()
  if jax.default_backend() == "tpu":
    assert device.platform == "cpu"
  else:
    assert device is None
  assert _compat.has_float64("cpu") and not _compat.has_float64("tpu")
  assert _compat.float64_device("tpu").platform == "cpu"


@pytest.mark.parametrize(
    "case", gradcheck.CASES, ids=lambda c: c.name.replace(" ", "_")
)
def test_every_table_row_is_within_tolerance(case):
  gradcheck.check_vjp(
      case.op,
      *case.build(shapes=case.check),
      static=case.static,
      reference=case.reference,
  )
