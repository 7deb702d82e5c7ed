"""What every model returns: float32 logits, whatever it computed in."""

import jax.numpy as jnp


def logits(x):
  # Models may compute in bf16; the softmax and loss always see float32.
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))
