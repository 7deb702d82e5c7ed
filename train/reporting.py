"""Run outputs: metrics.jsonl, loss/accuracy curves, progress bar, summary."""

import os
import sys

import tqdm


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


def summary(records: list[dict], steps: int, wall: float, ips: float) -> str:
  """The final one-line summary of a run."""
  if not records:
    return f'done: {steps} steps, {wall:.1f} s'
  best = max(records, key=lambda r: r['test_accuracy'])
  return (
      f'done: {steps} steps, final test accuracy'
      f' {records[-1]["test_accuracy"]:.4f}, best {best["test_accuracy"]:.4f}'
      f' (step {best["step"]}), {wall:.1f} s wall, {ips:.0f} images/s'
  )
