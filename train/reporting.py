"""Run outputs: config.json, metrics.jsonl, curves, progress bar, summary."""

import os
import sys
import time

import tqdm

from train import workdir as workdir_lib


def write_config(workdir: str, config) -> None:
  """Writes workdir/config.json atomically: a kill leaves the old or the new."""
  text = config.to_json_best_effort(indent=2) + '\n'
  workdir_lib.atomic_write(os.path.join(workdir, 'config.json'), text)


def plot_curves(records: list[dict], workdir: str, title: str) -> None:
  """Writes loss.png and accuracy.png (train and test against step)."""
  import matplotlib  # Only the end of a run needs it.

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  steps = [r['step'] for r in records]
  for name, label in (('loss', 'cross-entropy loss'), ('accuracy', 'accuracy')):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [r[f'train_{name}'] for r in records], 'o-', label='train')
    ax.plot(steps, [r[f'test_{name}'] for r in records], 's-', label='test')
    ax.set_xlabel('step')
    ax.set_ylabel(label)
    ax.set_title(f'{title}: {name}')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, f'{name}.png'), dpi=100)
    plt.close(fig)


def progress_bar(start: int, total: int, enabled: bool | None) -> tqdm.tqdm:
  """A tqdm bar over steps; off when stderr is not a terminal, unless forced."""
  if enabled is None:
    enabled = sys.stderr.isatty()
  return tqdm.tqdm(
      initial=start, total=total, unit='step', disable=not enabled, leave=False
  )


def summary_line(
    records: list[dict], steps: int, wall: float, ips: float
) -> str:
  """The final one-line summary of a run (`models.summary` is the model's)."""
  if not records:
    return f'done: {steps} steps, {wall:.1f} s'
  best = max(records, key=lambda r: r['test_accuracy'])
  return (
      f'done: {steps} steps, final test accuracy'
      f' {records[-1]["test_accuracy"]:.4f}, best {best["test_accuracy"]:.4f}'
      f' (step {best["step"]}), {wall:.1f} s wall, {ips:.0f} images/s'
  )


class Throughput:
  """Images per second of training, leaving out the first, compiling step."""

  def __init__(self, batch_size: int):
    self.batch_size = batch_size
    self.tick, self.tick_step = None, 0
    self.seconds, self.steps = 0.0, 0  # over finished evaluation periods

  def start(self, step: int) -> None:
    self.tick, self.tick_step = time.perf_counter(), step

  def rate(self, step: int) -> float:
    """Since the last `start`, without ending the period."""
    seconds = max(time.perf_counter() - self.tick, 1e-9)
    return (step - self.tick_step) * self.batch_size / seconds

  def lap(self, step: int) -> None:
    """Ends a period (at an evaluation): its time counts in `mean`."""
    self.seconds += time.perf_counter() - self.tick
    self.steps += step - self.tick_step

  def mean(self) -> float:
    return self.steps * self.batch_size / max(self.seconds, 1e-9)


def show_progress(bar, step: int, train: tuple, ips: float) -> None:
  bar.update(step - bar.n)
  bar.set_postfix(
      loss=f'{train[0]:.4f}', acc=f'{train[1]:.4f}', img_s=f'{ips:.0f}'
  )


def log_evaluation(log, bar, *, step, train, test, **fields) -> None:
  """Appends one row to metrics.jsonl and prints it above the progress bar."""
  (train_loss, train_accuracy), (test_loss, test_accuracy) = train, test
  log.write({
      'step': step,
      'train_loss': train_loss,
      'train_accuracy': train_accuracy,
      'test_loss': float(test_loss),
      'test_accuracy': float(test_accuracy),
      **fields,
  })
  if not log.primary:
    return
  bar.write(
      f'step {step}: train loss {train_loss:.4f} acc {train_accuracy:.4f} |'
      f' test loss {test_loss:.4f} acc {test_accuracy:.4f} |'
      f' {fields["images_per_sec"]:.0f} images/s'
  )
