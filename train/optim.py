"""Optax optimizer and learning-rate schedule from validated config keys."""

import dataclasses

import jax
import optax

OPTIMIZERS = ('sgd', 'momentum', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine', 'warmup_cosine', 'piecewise')


@dataclasses.dataclass(frozen=True)
class Settings:
  """The optimizer and schedule keys of a config, validated (`from_config`)."""

  optimizer: str
  learning_rate: float
  max_steps: int
  schedule: str = 'constant'
  momentum: float = 0.9
  nesterov: bool = False
  weight_decay: float = 0.0
  grad_clip_norm: float = 0.0
  warmup_steps: int = 0
  decay_boundaries: tuple[float, ...] = (0.5, 0.75)
  decay_factor: float = 0.1

  @classmethod
  def from_config(cls, config) -> 'Settings':
    """Reads and checks the keys; raises a one-line ValueError."""
    validate(config)
    names = [f.name for f in dataclasses.fields(cls)]
    settings = {name: config[name] for name in names}
    settings['decay_boundaries'] = tuple(config.decay_boundaries)
    return cls(**settings)


def validate(config) -> None:
  """Raises a one-line ValueError for an unknown or out-of-range setting.

  `label_smoothing` is checked here too: it shapes the loss being optimized.
  """
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


def make_schedule(s: Settings) -> optax.Schedule:
  """The learning rate as a function of the step, per `s.schedule`."""
  lr, steps = s.learning_rate, s.max_steps
  if s.schedule == 'constant':
    return optax.constant_schedule(lr)
  if s.schedule == 'cosine':
    return optax.cosine_decay_schedule(lr, decay_steps=steps)
  if s.schedule == 'warmup_cosine':
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=lr,
        warmup_steps=s.warmup_steps,
        decay_steps=steps,
    )
  boundaries = {int(f * steps): s.decay_factor for f in s.decay_boundaries}
  return optax.piecewise_constant_schedule(lr, boundaries)


def _decay_mask(params):
  # Weight decay on kernels only: biases and norm scales/shifts are left alone.
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(
    s: Settings, lr: optax.Schedule
) -> optax.GradientTransformation:
  """The optax transformation: clipping, weight decay, then the optimizer.

  `lr` is `make_schedule(s)`, built once by the caller. For 'adamw' the
  decay is decoupled (Loshchilov & Hutter); for the others it is an L2 term
  added to the gradient, as PyTorch's `weight_decay` does.
  """
  if s.optimizer == 'adamw':
    opt = optax.adamw(lr, weight_decay=s.weight_decay, mask=_decay_mask)
  else:
    opt = {
        'sgd': lambda: optax.sgd(lr),
        'momentum': lambda: optax.sgd(
            lr, momentum=s.momentum, nesterov=s.nesterov
        ),
        'adam': lambda: optax.adam(lr),
    }[s.optimizer]()
    if s.weight_decay:
      opt = optax.chain(
          optax.add_decayed_weights(s.weight_decay, mask=_decay_mask), opt
      )
  if s.grad_clip_norm:
    opt = optax.chain(optax.clip_by_global_norm(s.grad_clip_norm), opt)
  return opt
