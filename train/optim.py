"""Optax optimizer and learning-rate schedule built from a config."""

import jax
import optax

OPTIMIZERS = ('sgd', 'momentum', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine', 'warmup_cosine', 'piecewise')


def validate(config) -> None:
  """Raises a one-line ValueError for an unknown or out-of-range setting."""
  if config.optimizer not in OPTIMIZERS:
    raise ValueError(
        f'config.optimizer={config.optimizer!r} is unknown; use one of'
        f' {", ".join(OPTIMIZERS)}.'
    )
  if config.schedule not in SCHEDULES:
    raise ValueError(
        f'config.schedule={config.schedule!r} is unknown; use one of'
        f' {", ".join(SCHEDULES)}.'
    )
  if not config.learning_rate > 0:
    raise ValueError(
        f'config.learning_rate must be > 0, got {config.learning_rate}.'
    )
  for key in ('weight_decay', 'grad_clip_norm', 'warmup_steps'):
    if not config[key] >= 0:
      raise ValueError(f'config.{key} must be >= 0, got {config[key]}.')
  if not 0 <= config.momentum < 1:
    raise ValueError(
        f'config.momentum must be in [0, 1), got {config.momentum}.'
    )
  if not 0 <= config.label_smoothing < 1:
    raise ValueError(
        'config.label_smoothing must be in [0, 1), got'
        f' {config.label_smoothing}.'
    )
  if config.schedule == 'warmup_cosine' and config.warmup_steps >= max(
      config.max_steps, 1
  ):
    raise ValueError(
        f'config.warmup_steps={config.warmup_steps} must be below'
        f' config.max_steps={config.max_steps}.'
    )
  if config.schedule == 'piecewise':
    if not all(0 < f < 1 for f in config.decay_boundaries):
      raise ValueError(
          'config.decay_boundaries are fractions of max_steps in (0, 1), got'
          f' {tuple(config.decay_boundaries)}.'
      )
    if not config.decay_factor > 0:
      raise ValueError(
          f'config.decay_factor must be > 0, got {config.decay_factor}.'
      )


def make_schedule(config) -> optax.Schedule:
  """The learning rate as a function of the step, per `config.schedule`."""
  lr, steps = config.learning_rate, config.max_steps
  if config.schedule == 'constant':
    return optax.constant_schedule(lr)
  if config.schedule == 'cosine':
    return optax.cosine_decay_schedule(lr, decay_steps=steps)
  if config.schedule == 'warmup_cosine':
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=lr,
        warmup_steps=config.warmup_steps,
        decay_steps=steps,
    )
  boundaries = {
      int(f * steps): config.decay_factor for f in config.decay_boundaries
  }
  return optax.piecewise_constant_schedule(lr, boundaries)


def _decay_mask(params):
  # Weight decay on kernels only: biases and norm scales/shifts are left alone.
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(config) -> optax.GradientTransformation:
  """The optax transformation: clipping, weight decay, then the optimizer.

  For 'adamw' the decay is decoupled (Loshchilov & Hutter); for the others it is
  an L2 term added to the gradient, as PyTorch's `weight_decay` does.
  """
  lr = make_schedule(config)
  if config.optimizer == 'adamw':
    opt = optax.adamw(lr, weight_decay=config.weight_decay, mask=_decay_mask)
  else:
    opt = {
        'sgd': lambda: optax.sgd(lr),
        'momentum': lambda: optax.sgd(
            lr, momentum=config.momentum, nesterov=config.nesterov
        ),
        'adam': lambda: optax.adam(lr),
    }[config.optimizer]()
    if config.weight_decay:
      opt = optax.chain(
          optax.add_decayed_weights(config.weight_decay, mask=_decay_mask), opt
      )
  if config.grad_clip_norm:
    opt = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), opt)
  return opt
