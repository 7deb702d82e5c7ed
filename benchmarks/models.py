"""Train-step images/s and memory per model, hand-written vs autodiff backward.

Run from the repository root: ``python -m benchmarks.models [--quick]``. Writes
the ``models`` section of ``docs/benchmarks.md``.
"""

import argparse
import functools
import sys

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from benchmarks import _timing
from jaxbp import models, ops

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


def _loss(model, x, labels):
  return ops.softmax_cross_entropy(model(x), labels)


def compiled_train_step(make, vjp, x, labels):
  """Returns the AOT-compiled SGD train step and its initial state.

  The step is a pure function of ``(state, x, labels)`` (nnx.split/merge inside
  one ``jax.jit``), so timing it excludes NNX's Python-side graph traversal.
  """
  model = make(vjp, nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.sgd(0.01, momentum=0.9), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))

  def step(state, x, labels):
    model, optimizer = nnx.merge(graphdef, state)
    loss, grads = nnx.value_and_grad(_loss)(model, x, labels)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss

  return jax.jit(step).lower(state, x, labels).compile(), state


def measure(make, shape, batch, vjp, repeats):
  kx, ky = jax.random.split(jax.random.key(0))
  x = jax.random.uniform(kx, (batch, *shape), jnp.float32)
  labels = jax.random.randint(ky, (batch,), 0, 10)
  step, state = compiled_train_step(make, vjp, x, labels)
  seconds = _timing.median_time(step, state, x, labels, repeats=repeats)
  memory = step.memory_analysis()
  return batch / seconds, memory.temp_size_in_bytes


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
      "--quick", action="store_true", help="batch 8, 2 repeats: checks it runs"
  )
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument(
      "--only", default="", help="run the models whose name contains this"
  )
  args = parser.parse_args()
  repeats = 2 if args.quick else args.repeats
  mib = lambda n: f"{n / 2**20:,.0f}"
  rows = [
      (
          "| model | batch | manual img/s | autodiff img/s | speedup |"
          " manual temp MiB | autodiff temp MiB |"
      ),
      "|---|---:|---:|---:|---:|---:|---:|",
  ]
  for name, (make, shape, batch) in MODELS.items():
    if args.only not in name:
      continue
    batch = 8 if args.quick else batch
    run = functools.partial(measure, make, shape, batch, repeats=repeats)
    (fast, mem_fast), (slow, mem_slow) = run("manual"), run("autodiff")
    rows.append(
        f"| {name} | {batch} | {fast:,.1f} | {slow:,.1f} | {fast / slow:.1f}x"
        f" | {mib(mem_fast)} | {mib(mem_slow)} |"
    )
    print(rows[-1], flush=True)
  command = " ".join(["python -m benchmarks.models", *sys.argv[1:]])
  note = (
      "`--quick` run (batch 8, 2 repeats): checks the script, not figures."
      if args.quick
      else ""
  )
  _timing.write_section(
      "models",
      "\n".join([
          "## Models: train step, hand-written vs autodiff backward",
          "",
          (
              "One SGD-momentum train step (forward, backward, update)"
              f" compiled with `jax.jit`; median wall time of {repeats} runs"
              " after warm-up, as images per second. Temp MiB is XLA's scratch"
              " memory for the step (`memory_analysis()`), the peak beyond"
              " parameters, optimizer state and the batch."
          ),
          "",
          *rows,
          "",
          note,
          f"Command: `{command}`. Machine: {_timing.machine()}",
      ]),
  )


if __name__ == "__main__":
  main()
