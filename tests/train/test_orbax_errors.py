"""Late reports of Orbax's closed event loop are dropped; others pass."""

import asyncio
import subprocess
import sys

# A child process: the hooks are process-wide and installed for good.
CHILD = r"""
import asyncio, sys
from train import orbax_errors
with orbax_errors.quiet():
  pass
loop = asyncio.new_event_loop()
loop.close()
try:
  loop.call_soon_threadsafe(print)
except RuntimeError as e:
  late = e
sys.excepthook(type(late), late, late.__traceback__)  # As a binding's print.
class Unraisable:
  exc_type, exc_value, exc_traceback = type(late), late, late.__traceback__
  err_msg, object = None, None
sys.unraisablehook(Unraisable)
other = RuntimeError('something else')
sys.excepthook(RuntimeError, other, None)
print('done', flush=True)
"""


def test_closed_loop_reports_are_dropped_and_others_kept():
  result = subprocess.run(
      [sys.executable, '-c', CHILD], capture_output=True, text=True, timeout=120
  )
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == 'done'
  assert 'Event loop is closed' not in result.stderr
  assert 'RuntimeError: something else' in result.stderr


def test_a_closed_loop_raises_from_call_soon_threadsafe():
  # The premise: the report this filter looks for is what asyncio raises.
  from train import orbax_errors

  loop = asyncio.new_event_loop()
  loop.close()
  try:
    loop.call_soon_threadsafe(print)
  except RuntimeError as e:
    assert orbax_errors._closed_loop(e, e.__traceback__)
  else:
    raise AssertionError('a closed loop took a callback')
  assert not orbax_errors._closed_loop(RuntimeError('other'), None)
