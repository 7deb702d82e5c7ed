"""Run outputs: metrics.jsonl, loss/accuracy curves, progress bar, summary."""

import json
import os
import sys

import tqdm


class MetricsLog:
  """Appends one JSON object per evaluation to workdir/metrics.jsonl."""

  def __init__(self, workdir: str, start_step: int):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.records = [r for r in read(self.path) if r['step'] <= start_step]
    # Rows past the restored checkpoint come from a run that was cut short;
    # they will be recomputed, so they are dropped to keep one row per step.
    with open(self.path, 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in self.records)

  def write(self, record: dict) -> None:
    self.records.append(record)
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')


def read(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


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
