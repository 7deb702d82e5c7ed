"""Orbax failures as one line: `quiet` silences its own reports, `reason` cuts."""

import contextlib
import gc
import logging
import sys
import threading


@contextlib.contextmanager
def quiet():
  """Leaves the console to the one line the caller makes of an Orbax error.

  Orbax logs each failed read or write with its traceback, then raises it. A
  failed restore also leaves TensorStore callbacks that fire into a closed
  event loop, and unawaited coroutines: Python reports those as "unraisable".
  """
  _drop_closed_loop_reports()  # Before the hook below is saved and reset.
  handlers = [h for h in (*logging.root.handlers, logging.lastResort) if h]
  # asyncio logs the failed reads again when Orbax's event loop shuts down.
  drop = lambda r: 'orbax' not in r.pathname and r.name != 'asyncio'
  for handler in handlers:
    handler.addFilter(drop)
  previous_hook = sys.unraisablehook
  sys.unraisablehook = lambda unraisable: None
  _drop_orbax_thread_reports()
  _drop_orbax_asyncio_reports()
  _drop_orbax_thread_logs()
  try:
    yield
  finally:
    # A failed read leaves unawaited coroutines, also where the caller caught
    # the error inside this block: collect them now, while still quiet.
    gc.collect()
    for handler in handlers:
      handler.removeFilter(drop)
    sys.unraisablehook = previous_hook


def reason(e: BaseException) -> str:
  """The first line of an Orbax/TensorStore error, without its spec dump."""
  first = (str(e).strip().splitlines() or [''])[0]
  # TensorStore appends a repr of its whole spec; the error comes before it.
  first = first.split(' See full TensorStore')[0].split(' [tensorstore_spec')[0]
  first = first if len(first) <= 120 else first[:117] + '...'
  return f'{type(e).__name__}: {first}'


def _drop_orbax_thread_reports() -> None:
  """Installs, once, a thread excepthook that drops Orbax threads' reports.

  Orbax's background save threads print their failure when they end, which
  can be after the failed call has returned (and `quiet` has ended); the same
  error reaches the caller through the save's future. Reports of any other
  thread go to the hook that was there before.
  """
  previous = threading.excepthook
  if getattr(previous, 'drops_orbax', False):
    return

  def hook(args):
    if not _through_orbax(args.exc_traceback):
      previous(args)

  hook.drops_orbax = True
  threading.excepthook = hook


def _through_orbax(tb) -> bool:
  while tb is not None:
    if 'orbax' in tb.tb_frame.f_code.co_filename:
      return True
    tb = tb.tb_next
  return False


def _drop_orbax_thread_logs() -> None:
  """Filters, once, the failures Orbax's own threads log with a traceback.

  A failed background save logs "_SignalingThread.run() raised an exception"
  from its thread, which can be after the failed call has returned (seen in
  CI after the run's one error line, under load); the same error reaches the
  caller through the save's future. Records from the main thread, without a
  traceback, or whose traceback does not pass through Orbax's code pass.
  """
  for logger in (logging.getLogger('absl'), logging.root):
    if any(getattr(f, 'drops_orbax', False) for f in logger.filters):
      continue

    def keep(record) -> bool:
      return not (
          record.exc_info
          and _through_orbax(record.exc_info[2])
          and record.thread != threading.main_thread().ident
      )

    keep.drops_orbax = True
    logger.addFilter(keep)


def _drop_orbax_asyncio_reports() -> None:
  """Filters, once, asyncio's reports of Orbax's failed tasks.

  A failed save or read leaves asyncio tasks whose exception asyncio reports
  ("Task exception was never retrieved") whenever the task is collected,
  which can be after `quiet` has ended; the caller already got that error.
  Other asyncio records pass.
  """
  logger = logging.getLogger('asyncio')
  if any(getattr(f, 'drops_orbax', False) for f in logger.filters):
    return

  def keep(record) -> bool:
    exc = record.exc_info[2] if record.exc_info else None
    return not (_through_orbax(exc) or 'orbax' in record.getMessage())

  keep.drops_orbax = True
  logger.addFilter(keep)


def _closed_loop(exc, tb) -> bool:
  """Whether this is a late callback into Orbax's closed event loop.

  TensorStore completes a failed read or write from its own thread with
  ``loop.call_soon_threadsafe``; after Orbax closed that loop the call raises
  "Event loop is closed" with no Python caller, and the binding prints it.
  """
  if not (isinstance(exc, RuntimeError) and 'Event loop is closed' in str(exc)):
    return False
  while tb is not None:
    if tb.tb_frame.f_code.co_name == 'call_soon_threadsafe':
      return True
    tb = tb.tb_next
  return False


def _drop_closed_loop_reports() -> None:
  """Installs, once, hooks that drop `_closed_loop` reports, for good.

  They can come at any time after the failed call (seen in CI after the
  run's one error line, at exit); every other report goes to the hook that
  was there before.
  """
  if getattr(sys.excepthook, 'drops_closed_loop', False):
    return
  previous_except, previous_unraisable = sys.excepthook, sys.unraisablehook

  def excepthook(kind, exc, tb):
    if not _closed_loop(exc, tb):
      previous_except(kind, exc, tb)

  def unraisablehook(unraisable):
    if not _closed_loop(unraisable.exc_value, unraisable.exc_traceback):
      previous_unraisable(unraisable)

  excepthook.drops_closed_loop = True
  sys.excepthook = excepthook
  sys.unraisablehook = unraisablehook
