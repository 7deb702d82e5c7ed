"""notebooks/colab.ipynb runs top to bottom in smoke mode and shows its results."""

import json
import os
import pathlib
import sys

import nbclient
import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / 'notebooks' / 'colab.ipynb'
CELL_TIMEOUT = 240  # seconds; the whole smoke run takes about a minute
KERNEL = 'jaxbp-notebook-test'


def _write_kernel_spec(kernels: pathlib.Path) -> None:
  """A kernel running this interpreter, in smoke mode, on this checkout."""
  python_path = os.pathsep.join(
      p for p in (str(ROOT), os.environ.get('PYTHONPATH')) if p
  )
  spec = {
      'argv': [
          sys.executable,
          '-m',
          'ipykernel_launcher',
          '-f',
          '{connection_file}',
      ],
      'display_name': 'jaxbp notebook test',
      'language': 'python',
      'env': {
          'JAXBP_NOTEBOOK_SMOKE': '1',
          'JAXBP_SOURCE': str(ROOT),
          # configs/ is imported from the checkout, like train/ and jaxbp/.
          'PYTHONPATH': python_path,
          'JAX_PLATFORMS': 'cpu',
      },
  }
  (kernels / KERNEL).mkdir(parents=True)
  (kernels / KERNEL / 'kernel.json').write_text(json.dumps(spec))


def _execute(tmp: pathlib.Path):
  """The notebook after running every cell in a directory outside the checkout."""
  _write_kernel_spec(tmp / 'jupyter' / 'kernels')
  workdir = tmp / 'cwd'
  workdir.mkdir()
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(
      nb,
      kernel_name=KERNEL,
      timeout=CELL_TIMEOUT,
      resources={'metadata': {'path': str(workdir)}},
  )
  with pytest.MonkeyPatch.context() as env:
    # Where jupyter_client looks for kernel specs first.
    env.setenv('JUPYTER_PATH', str(tmp / 'jupyter'))
    client.execute()  # Raises CellExecutionError, naming the cell, on error.
  return nb, workdir


def _outputs(nb, tag: str) -> list:
  cells = [c for c in nb.cells if tag in c.metadata.get('tags', [])]
  assert len(cells) == 1, f'expected one cell tagged {tag!r}, got {len(cells)}'
  return cells[0].outputs


def _text(outputs) -> str:
  parts = []
  for out in outputs:
    if out.output_type == 'stream':
      parts.append(out.text)
    for mime in ('text/plain', 'text/markdown'):
      parts.append(out.get('data', {}).get(mime, ''))
  return '\n'.join(parts)


def _pngs(outputs) -> int:
  return sum('image/png' in out.get('data', {}) for out in outputs)


def test_stored_notebook_has_no_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == 'code']
  assert code, 'the notebook has no code cells'
  for cell in code:
    assert not cell.outputs and cell.execution_count is None, cell.source[:60]


def test_config_cell_reads_source_and_smoke_from_the_environment():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  (cell,) = [c for c in nb.cells if 'config' in c.metadata.get('tags', [])]
  assert "SOURCE = 'git+https://github.com/jaxbp/jaxbp'" in cell.source
  assert "os.environ.get('JAXBP_SOURCE', SOURCE)" in cell.source
  assert "os.environ.get('JAXBP_NOTEBOOK_SMOKE') == '1'" in cell.source


def _check_install_skipped_for_this_checkout(nb):
  text = _text(_outputs(nb, 'install'))
  assert 'already importable from' in text and 'not reinstalled' in text, text
  assert 'pip install' not in text, text  # Neither jaxbp nor tensorflow-cpu.


def _check_device_report(nb):
  text = _text(_outputs(nb, 'device'))
  assert 'backend: cpu' in text and 'float64 on cpu: yes' in text, text


def _check_derivation_rendered(nb):
  text = _text(_outputs(nb, 'derivation'))
  assert '$$' in text and r'\hat{x}' in text, text
  assert '```python\ndef ' in text, text  # The backward's source.


def _check_gradcheck_table_all_within_tolerance(nb):
  text = _text(_outputs(nb, 'gradcheck'))
  rows = [
      line.strip('| ').split(' | ')
      for line in text.splitlines()
      if line.startswith('| (')
  ]
  assert len(rows) == 6, text  # x, gamma, beta for each of two input shapes.
  assert all(row[-1] == 'yes' for row in rows), text
  assert 'all within tolerance' in text and 'NOT' not in text, text


def _check_timing_of_both_backwards(nb):
  text = _text(_outputs(nb, 'timing'))
  assert '| manual |' in text and '| autodiff |' in text, text
  assert 'hand-written / autodiff speed' in text, text


def _check_curves_shown(nb, workdir, tag):
  assert _pngs(_outputs(nb, tag)) == 2, f'{tag}: expected loss + accuracy'
  run = workdir / 'runs' / f'{tag}-smoke'
  assert (run / 'loss.png').exists() and (run / 'accuracy.png').exists()
  assert (run / 'metrics.jsonl').read_text().strip()


def _check_study_plots_or_says_unavailable(nb):
  outputs = _outputs(nb, 'study')
  if (ROOT / 'configs' / 'studies' / 'batch_norm.py').exists():
    assert _pngs(outputs) >= 1, _text(outputs)
  else:
    assert 'not available in this version of jaxbp yet' in _text(outputs)


# One test, not one per claim: each would execute the notebook again under
# pytest-xdist, which spreads a module's tests over its workers.
@pytest.mark.slow
def test_notebook_runs_in_smoke_mode_and_shows_its_results(tmp_path):
  nb, workdir = _execute(tmp_path)
  _check_install_skipped_for_this_checkout(nb)
  _check_device_report(nb)
  _check_derivation_rendered(nb)
  _check_gradcheck_table_all_within_tolerance(nb)
  _check_timing_of_both_backwards(nb)
  _check_curves_shown(nb, workdir, 'mlp')
  _check_curves_shown(nb, workdir, 'vgg')
  _check_study_plots_or_says_unavailable(nb)
