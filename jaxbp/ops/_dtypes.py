"""Dtype policy shared by the ops: low-precision statistics run in float32."""

import jax.numpy as jnp


def stat_dtype(x) -> jnp.dtype:
  """Returns float32 for bf16/f16 inputs, the input's own dtype otherwise.

  Norm, softmax and loss statistics (means, variances, sums of exponentials)
  lose too much in 8-bit mantissas, so they are computed in float32 and the
  results cast back to the input dtype.
  """
  dtype = jnp.result_type(x)
  return jnp.promote_types(dtype, jnp.float32)
