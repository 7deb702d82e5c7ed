"""A run's folder: checked before any work, locked while a run writes to it."""

import contextlib
import errno
import fcntl
import os
import tempfile


class WorkdirError(ValueError):
  """A one-line problem with the workdir (the CLIs print a ValueError so)."""


# errnos that mean "this folder cannot take writes", not a bug in the run.
_WRITE_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
)


def describe(e: OSError, workdir: str) -> str:
  """One line naming what `e` (raised writing under `workdir`) means, and the fix."""
  where = f' ({e.filename})' if e.filename else ''
  if e.errno in (errno.ENOSPC, errno.EDQUOT):
    return (
        f'no space left on the device of workdir {workdir}{where}; free space'
        ' and rerun the same command (it resumes from the last complete'
        ' checkpoint), or use another --workdir.'
    )
  if e.errno == errno.EROFS:
    return (
        f'workdir {workdir} is on a read-only file system{where}; use another'
        ' --workdir.'
    )
  if e.errno in (errno.EACCES, errno.EPERM):
    return (
        f'cannot write in workdir {workdir}{where}: {e.strerror} (read-only or'
        ' immutable?); make it writable (chmod u+w, chattr -i) or use another'
        ' --workdir.'
    )
  return (
      f'cannot use workdir {workdir}{where}: {e.strerror}; use another'
      ' --workdir.'
  )


def atomic_write(path: str, text: str) -> None:
  """Replaces `path` by `text` all at once: temp file, fsync, os.replace.

  A crash at any moment leaves either the old file or the new one, whole.
  """
  directory = os.path.dirname(os.path.abspath(path))
  fd, temp = tempfile.mkstemp(
      dir=directory, prefix=f'.{os.path.basename(path)}.', suffix='.tmp'
  )
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(temp)
    raise
  # The rename itself survives a power loss only once the folder is synced.
  dir_fd = os.open(directory, os.O_RDONLY)
  try:
    os.fsync(dir_fd)
  finally:
    os.close(dir_fd)


def prepare(workdir: str) -> str:
  """Creates `workdir` and proves it takes writes; returns its absolute path.

  Runs before any data is loaded. Raises a one-line `WorkdirError` when the
  workdir is a file, or read-only, immutable or on a full disk: a file is
  actually written and fsynced, since permission bits do not stop root.
  """
  path = os.path.abspath(workdir)
  if os.path.exists(path) and not os.path.isdir(path):
    raise WorkdirError(
        f'--workdir {path} is a file, not a folder; pass a new folder or that'
        ' of an earlier run.'
    )
  try:
    os.makedirs(path, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=path, prefix='.write-probe-')
    try:
      os.write(fd, b'probe\n')
      os.fsync(fd)
    finally:
      os.close(fd)
      os.remove(probe)
  except OSError as e:
    raise WorkdirError(describe(e, path)) from None
  return path


@contextlib.contextmanager
def lock(workdir: str, name: str = '.lock'):
  """Holds workdir/<name> (fcntl.flock, holding the pid) for one run.

  A second run in the same workdir gets a one-line `WorkdirError` naming the
  first one's process id. The kernel drops the lock when the process ends,
  also on a crash or kill -9; the file stays (deleting it would let a later
  run lock a new file while another still holds the old one).
  """
  path = os.path.abspath(workdir)
  try:
    fd = os.open(os.path.join(path, name), os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise WorkdirError(describe(e, path)) from None
  with os.fdopen(fd, 'r+') as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      pid = f.read().strip() or 'unknown'
      raise WorkdirError(
          f'workdir {path} is in use by another run (process {pid}); wait for'
          ' it to end (or stop it), or use another --workdir.'
      ) from None
    f.truncate()
    f.write(f'{os.getpid()}\n')
    f.flush()
    yield


@contextlib.contextmanager
def write_errors(workdir: str):
  """Turns a write refused under `workdir` (full disk...) into one line.

  An `OSError` with one of those errnos becomes a `WorkdirError`; any other
  error passes through unchanged.
  """
  try:
    yield
  except OSError as e:
    if e.errno not in _WRITE_ERRNOS:
      raise
    raise WorkdirError(describe(e, os.path.abspath(workdir))) from None
