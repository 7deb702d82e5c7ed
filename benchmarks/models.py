"""Train-step images/s and memory per model, hand-written vs autodiff backward.

Run from the repository root: ``python -m benchmarks.models [--quick]``. Writes
the ``models`` section of ``docs/benchmarks.md``.
"""

import sys

import jax
import jax.numpy as jnp
import optax
from absl import app, flags
from flax import nnx

from benchmarks import _timing
from jaxbp import models, nn, ops

QUICK = flags.DEFINE_bool("quick", False, "Batch 8, 2 repeats: a smoke run.")
REPEATS = flags.DEFINE_integer("repeats", 10, "Timed rounds per model.")
ONLY = flags.DEFINE_string("only", "", "Run the models whose name has this.")
VJPS = ("manual", "autodiff")

# name -> (constructor taking vjp and rngs, input shape without batch, batch).
MODELS = {
    "VGG (Table 1)": (
        lambda vjp, rngs: models.VGG(vjp=vjp, rngs=rngs),
        (32, 32, 3),
        128,
    ),
    "SmallConvNet": (
        lambda vjp, rngs: models.SmallConvNet(vjp=vjp, rngs=rngs),
        (32, 32, 3),
        128,
    ),
    "MLP 3072-100-10, LeakyReLU(0.02)": (
        lambda vjp, rngs: models.MLP(
            3072, (100,), 10, negative_slope=0.02, vjp=vjp, rngs=rngs
        ),
        (3072,),
        200,
    ),
    "MLP 3072-1024-512-10, BN, ReLU": (
        lambda vjp, rngs: models.MLP(
            3072, (1024, 512), 10, "relu", "batch", vjp=vjp, rngs=rngs
        ),
        (3072,),
        200,
    ),
}


def _loss_fn(vjp):
  """The loss with its hand-written backward, or autodiff's: as the model."""
  loss = nn.select(ops.softmax_cross_entropy, vjp)
  return lambda model, x, labels: loss(model(x), labels)


def compiled_train_step(make, vjp, x, labels):
  """Returns the AOT-compiled SGD train step and its initial state.

  The step is a pure function of ``(state, x, labels)`` (nnx.split/merge inside
  one ``jax.jit``), so timing it excludes NNX's Python-side graph traversal.
  """
  model = make(vjp, nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.sgd(0.01, momentum=0.9), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  loss_fn = _loss_fn(vjp)

  def step(state, x, labels):
    model, optimizer = nnx.merge(graphdef, state)
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, labels)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss

  return jax.jit(step).lower(state, x, labels).compile(), state


def measure(make, shape, batch, repeats):
  """Returns images/s and XLA temp bytes of the manual and autodiff steps.

  The two compiled steps are called in turn, round after round
  (`_timing.median_times`), so load changes hit both alike.
  """
  kx, ky = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(kx, (batch, *shape), jnp.float32)
  labels = jax.random.randint(ky, (batch,), 0, 10)
  steps = [compiled_train_step(make, vjp, x, labels) for vjp in VJPS]
  seconds = _timing.median_times(
      [(step, (state, x, labels)) for step, state in steps], repeats=repeats
  )
  return [
      (batch / t, step.memory_analysis().temp_size_in_bytes)
      for t, (step, _) in zip(seconds, steps, strict=True)
  ]


def main(argv):
  del argv  # Flags only.
  repeats = 2 if QUICK.value else REPEATS.value
  mib = lambda n: f"{n / 2**20:,.0f}"
  rows = [
      (
          "| model | batch | manual img/s | autodiff img/s | speedup |"
          " manual temp MiB | autodiff temp MiB |"
      ),
      "|---|---:|---:|---:|---:|---:|---:|",
  ]
  for name, (make, shape, batch) in MODELS.items():
    if ONLY.value not in name:
      continue
    batch = 8 if QUICK.value else batch
    (fast, mem_fast), (slow, mem_slow) = measure(make, shape, batch, repeats)
    rows.append(
        f"| {name} | {batch} | {fast:,.1f} | {slow:,.1f} | {fast / slow:.1f}x"
        f" | {mib(mem_fast)} | {mib(mem_slow)} |"
    )
    print(rows[-1], flush=True)
  command = " ".join(["python -m benchmarks.models", *sys.argv[1:]])
  note = (
      "`--quick` run (batch 8, 2 repeats): checks the script, not figures."
      if QUICK.value
      else ""
  )
  _timing.write_section(
      "models",
      "\n".join([
          "## Models: train step, hand-written vs autodiff backward",
          "",
          (
              "One SGD-momentum train step (forward, backward, update)"
              f" compiled with `jax.jit`; median wall time of {repeats} rounds"
              " after warm-up (manual and autodiff called in turn), as images"
              " per second. Temp MiB is XLA's scratch memory for the step"
              " (`memory_analysis()`), the peak beyond parameters, optimizer"
              " state and the batch."
          ),
          "",
          *rows,
          "",
          note,
          f"Command: `{command}`. Machine: {_timing.machine()}",
      ]),
  )


if __name__ == "__main__":
  app.run(main)
