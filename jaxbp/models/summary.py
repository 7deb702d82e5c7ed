"""A model's layers in call order with output shapes and parameter counts."""

import jax
import jax.numpy as jnp
from flax import nnx

from jaxbp import _compat, nn


def summary(model, input_shape, dtype=jnp.float32) -> str:
  """Returns a table of the layers in call order: output shape, parameters.

  ``input_shape`` includes the batch axis, e.g. ``(1, 32, 32, 3)``. Nothing is
  computed (shapes come from ``jax.eval_shape``) and nothing is changed: the
  layers report their outputs to an ``nn.listen`` callback while a copy of
  ``model`` is traced. Parameters are the trainable ``nnx.Param`` leaves;
  running statistics are reported on their own line.
  """
  graphdef, state = nnx.split(model)
  rows = [("layer", "type", "output shape", "params")]
  names = {}

  def record(layer, y):
    if isinstance(layer, str):  # A pooling function.
      rows.append(("", layer, str(y.shape), ""))
    elif not (isinstance(layer, nn.Dropout) and not layer.rate):
      # (A rate-0 dropout is the identity: not worth a row.)
      name = ".".join(map(str, names[id(layer)]))
      params = f"{_count(layer, nnx.Param):,}"
      rows.append((name, type(layer).__name__, str(y.shape), params))

  def forward(state, x):
    copy = nnx.merge(graphdef, state)
    names.update((id(m), path) for path, m in _compat.iter_modules(copy))
    with nn.listen(record):
      return copy(x)

  x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
  y = jax.eval_shape(forward, state, x)
  w = [max(len(row[i]) for row in rows) for i in range(4)]
  lines = [
      f"{a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d:>{w[3]}}".rstrip()
      for a, b, c, d in rows
  ]
  rule = "-" * len(lines[0])
  return "\n".join([
      lines[0],
      rule,
      *lines[1:],
      rule,
      f"input {x.shape} -> logits {y.shape}",
      f"trainable parameters: {_count(model, nnx.Param):,}",
      f"running statistics:   {_count(model, nnx.BatchStat):,}",
  ])


def _count(module, kind) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(module, kind)))
