"""Late reports of Orbax's closed event loop and of its threads' failures are
dropped; others pass."""

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
# An Orbax thread's late failure log (with its traceback), made by code in
# Orbax's own module; then the same from the main thread, and from a thread
# outside Orbax: those two pass.
import threading
from absl import logging as absl_logging
from orbax.checkpoint._src.futures import future
SRC = '''
def log(name):
  try:
    raise OSError(name)
  except OSError:
    logging.exception('%s raised an exception', name)
'''
orbax_code, plain = {'logging': absl_logging}, {'logging': absl_logging}
exec(compile(SRC, future.__file__, 'exec'), orbax_code)
exec(SRC, plain)
for target, name in [(orbax_code['log'], 'orbax-late'), (plain['log'], 'elsewhere')]:
  t = threading.Thread(target=target, args=(name,))
  t.start()
  t.join()
orbax_code['log']('orbax-main')
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
  assert 'orbax-late' not in result.stderr
  assert 'orbax-main raised' in result.stderr
  assert 'elsewhere raised' in result.stderr


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
