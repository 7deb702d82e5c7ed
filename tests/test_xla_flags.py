"""The XLA:CPU flags jaxbp sets: when they are set, and that results agree.

XLA reads XLA_FLAGS once per process, so each setting runs in a child
process; the children compute the same hand-written convolution gradients and
a VGG train step, and the results must agree to float32 rounding.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxbp import _xla_flags
from tests.train.conftest import subprocess_env

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUPPORTED = _xla_flags._jaxlib_version() >= _xla_flags.DEFAULTS[0][2]

# Conv y, dx, dw over shapes where choose_impl picks each formulation, and two
# Adam steps of a small VGG; prints the flags seen and the numbers as JSON.
CHILD = r"""
import json, os, sys
import jaxbp
import jax, jax.numpy as jnp, optax
from flax import nnx
from jaxbp import _xla_flags, models, ops
out = {"flags": os.environ.get("XLA_FLAGS", ""), "ynn": _xla_flags.ynn_dots()}
k = iter(jax.random.split(jax.random.key(0), 99))
for n, s, i, o in [(32, 16, 16, 64), (16, 8, 8, 96), (8, 32, 32, 3), (8, 2, 2, 64)]:
  x = jax.random.normal(next(k), (n, s, s, i))
  w = jax.random.normal(next(k), (3, 3, i, o)) / (3 * i ** 0.5)
  b = jax.random.normal(next(k), (o,))
  loss = lambda x, w, b: jnp.sum(jnp.sin(ops.conv2d(x, w, b)))
  y = ops.conv2d(x, w, b)
  grads = jax.jit(jax.grad(loss, (0, 1, 2)))(x, w, b)
  out[f"conv{s}x{s}x{i}"] = [a.ravel()[:4096].tolist() for a in (y, *grads)]
model = models.VGG(groups=((16,), (32,), (32,)), rngs=nnx.Rngs(0))
opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
graphdef, state = nnx.split((model, opt))
x = jax.random.uniform(next(k), (16, 32, 32, 3))
labels = jax.random.randint(next(k), (16,), 0, 10)
def step(state):  # As train/steps.py: the state is donated.
  m, o = nnx.merge(graphdef, state)
  l, g = nnx.value_and_grad(lambda m: ops.softmax_cross_entropy(m(x), labels))(m)
  o.update(m, g)
  return nnx.state((m, o)), l
step = jax.jit(step, donate_argnums=0)
hlo = step.lower(state).compile().as_text()
entry = hlo[hlo.index("ENTRY"):]
out["param_copies"] = sum(" copy(%" in line for line in entry.splitlines())
out["losses"] = []
for _ in range(3):
  state, l = step(state)
  out["losses"].append(float(l))
out["kernel"] = state[0]["classifier"]["kernel"][...].ravel().tolist()
print(json.dumps(out))
"""


# What the compiler answers under the XLA_FLAGS of a child.
PROBE = (
    "import json; from jaxbp import _xla_flags as f;"
    " print(json.dumps(f.ynn_dots()))"
)


def child(code=CHILD, **env) -> dict:
  full = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  full.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **env)
  result = subprocess.run(
      [sys.executable, "-c", code],
      env=full,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_same_results(got, want, *ignore):
  """Every number of two children's runs is exactly equal."""
  for name in want:
    if name not in ("flags", *ignore):
      assert got[name] == want[name], name


@pytest.fixture(scope="module")
def runs():
  return {
      "default": child(),
      "off": child(JAXBP_XLA_FLAGS="0"),
      "scheduler": child(
          JAXBP_XLA_FLAGS="0",
          XLA_FLAGS="--xla_cpu_enable_concurrency_optimized_scheduler=false",
      ),
      "copies": child(
          JAXBP_XLA_FLAGS="0",
          XLA_FLAGS="--xla_cpu_copy_insertion_use_region_analysis=true",
      ),
  }


@pytest.mark.skipif(not SUPPORTED, reason="jaxlib older than the flags' check")
def test_import_sets_ynn_dots_and_results_match_the_default(runs):
  on, off = runs["default"], runs["off"]
  assert (
      on["ynn"] and "--xla_cpu_experimental_ynn_fusion_type=dot" in on["flags"]
  )
  assert "--xla_cpu_enable_concurrency_optimized_scheduler=false" in on["flags"]
  assert "--xla_cpu_copy_insertion_use_region_analysis=true" in on["flags"]
  # jaxlib's own default (0.10.2) also runs dots through YNNPACK.
  assert off["ynn"] and off["flags"] == ""
  for name in on:
    if name.startswith("conv"):
      for a, b in zip(on[name], off[name], strict=True):
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * scale)
  np.testing.assert_allclose(on["losses"], off["losses"], rtol=1e-5)
  np.testing.assert_allclose(on["kernel"], off["kernel"], rtol=0, atol=1e-5)
  assert on["losses"][-1] < on["losses"][0]  # The steps really trained.


def test_older_jaxlib_gets_no_flag(monkeypatch):
  monkeypatch.setattr(_xla_flags, "_jaxlib_version", lambda: (0, 7))
  monkeypatch.setattr(_xla_flags, "_backend_started", lambda: False)
  env = {}
  assert _xla_flags.apply(env) == [] and env == {}


def test_apply_keeps_the_users_flags_and_opt_out(monkeypatch):
  monkeypatch.setattr(_xla_flags, "_jaxlib_version", lambda: (0, 10))
  monkeypatch.setattr(_xla_flags, "_backend_started", lambda: False)
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  ynn = "--xla_cpu_experimental_ynn_fusion_type=dot"
  scheduler = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
  copies = "--xla_cpu_copy_insertion_use_region_analysis=true"
  assert _xla_flags.apply(env) == [ynn, scheduler, copies]
  assert env["XLA_FLAGS"] == (
      f"--xla_force_host_platform_device_count=2 {ynn} {scheduler} {copies}"
  )
  mine = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="}
  assert _xla_flags.apply(mine) == [scheduler, copies]
  assert mine["XLA_FLAGS"] == (
      f"--xla_cpu_experimental_ynn_fusion_type= {scheduler} {copies}"
  )
  off = {"JAXBP_XLA_FLAGS": "0"}
  assert _xla_flags.apply(off) == [] and "XLA_FLAGS" not in off
  monkeypatch.setattr(_xla_flags, "_backend_started", lambda: True)
  late = {}
  with pytest.warns(UserWarning, match="imported after JAX started") as got:
    assert _xla_flags.apply(late) == [] and late == {}
  assert f"({ynn} {scheduler} {copies})" in str(got[0].message)
  assert "JAXBP_XLA_FLAGS=0" in str(got[0].message)
  # Nothing to warn of: the user opted out or gave every flag, or the CPU
  # is not JAX's default backend (the flags are for XLA:CPU).
  assert _xla_flags.apply({"JAXBP_XLA_FLAGS": "0"}) == []
  assert _xla_flags.apply({"XLA_FLAGS": f"{ynn} {scheduler} {copies}"}) == []
  monkeypatch.setattr(_xla_flags, "_cpu_is_default", lambda: False)
  assert _xla_flags.apply({}) == []


@pytest.mark.skipif(not SUPPORTED, reason="jaxlib older than the flags")
def test_importing_jaxbp_after_the_backend_started_warns():
  # The real order of events (the in-process test above fakes the start).
  code = (
      "import warnings; warnings.simplefilter('error'); import jax;"
      " jax.devices(); import jaxbp"
  )
  late = subprocess.run(
      [sys.executable, "-c", code],
      env=subprocess_env(JAX_PLATFORMS="cpu", JAXBP_XLA_FLAGS="1"),
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert late.returncode != 0
  assert "imported after JAX started its CPU backend" in late.stderr


@pytest.mark.skipif(not SUPPORTED, reason="jaxlib older than the flags' check")
@pytest.mark.parametrize(
    "value, expected",
    [
        ("", False),
        ("individual_convolution", False),
        ("dot,individual_convolution", True),
    ],
)
def test_ynn_dots_is_what_the_compiler_does_with_the_users_flag(
    value, expected
):
  flags = f"--xla_cpu_experimental_ynn_fusion_type={value}"
  assert child(PROBE, XLA_FLAGS=flags) is expected


@pytest.mark.skipif(not SUPPORTED, reason="jaxlib older than the flags' check")
def test_the_memory_scheduler_alone_changes_no_result(runs):
  got, want = runs["scheduler"], runs["off"]
  assert "concurrency_optimized_scheduler=false" in got["flags"]
  _assert_same_results(got, want)


@pytest.mark.skipif(not SUPPORTED, reason="jaxlib older than the flags' check")
def test_copy_insertion_region_analysis_alone_changes_no_result(runs):
  got, want = runs["copies"], runs["off"]
  assert "copy_insertion_use_region_analysis=true" in got["flags"]
  assert want["param_copies"] > 0 and got["param_copies"] == 0
  _assert_same_results(got, want, "param_copies")
