"""Dropout: the key stream and train/eval switch around ops.dropout."""

from flax import nnx

from jaxbp import ops
from jaxbp.nn import functional


class Dropout(nnx.Module):
  """Inverted dropout through ``ops.dropout``; twin of ``nnx.Dropout``.

  Active in ``model.train()`` mode, the identity in ``model.eval()`` mode. Keys
  come from the ``rng_collection`` stream of ``rngs`` (or a ``rngs=`` key at
  call time), as in ``nnx.Dropout``.
  """

  def __init__(
      self,
      rate,
      *,
      deterministic=False,
      rng_collection="dropout",
      vjp="manual",
      rngs=None,
  ):
    functional.check_vjp_mode(vjp)
    if not 0.0 <= rate < 1.0:
      raise ValueError(
          f"Dropout rate must be in [0, 1), got {rate}; use 0 for no dropout."
      )
    self.rate, self.deterministic = rate, deterministic
    self.rng_collection, self.vjp = rng_collection, vjp
    if isinstance(rngs, nnx.Rngs):
      self.rngs = rngs[rng_collection].fork()
    elif isinstance(rngs, nnx.RngStream):
      self.rngs = rngs.fork()
    else:
      self.rngs = nnx.data(None)

  def __call__(self, x, *, deterministic=None, rngs=None):
    if deterministic is None:
      deterministic = self.deterministic
    if deterministic or self.rate == 0.0:
      return functional.emit(self, x)
    key = self._key(rngs)
    return functional.emit(
        self, functional.select(ops.dropout, self.vjp)(x, key, self.rate)
    )

  def _key(self, rngs):
    rngs = self.rngs if rngs is None else rngs
    if rngs is None:
      raise ValueError(
          "Dropout is in training mode but has no rngs: pass rngs=nnx.Rngs(...)"
          " to the constructor or the call, or call model.eval()."
      )
    if isinstance(rngs, nnx.Rngs):
      return rngs[self.rng_collection]()
    if isinstance(rngs, nnx.RngStream):
      return rngs()
    return rngs
