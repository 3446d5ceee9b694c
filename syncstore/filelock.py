"""An exclusive advisory lock on a file, shared by threads and processes on one host."""

import fcntl
import threading
import time
from contextlib import contextmanager
from pathlib import Path

# flock() locks belong to an open file description, so two threads of one process
# that each open the file do exclude each other; the thread lock below only saves
# them from spinning on the same file twice.
_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()
_POLL = 0.01


class LockTimeout(Exception):
    """The lock stayed taken for the whole wait."""


@contextmanager
def file_lock(path: Path, *, timeout: float | None = None):
    """Hold an exclusive lock on ``path``; with ``timeout``, raise LockTimeout after it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _guard:
        thread_lock = _thread_locks.setdefault(str(path), threading.Lock())
    deadline = None if timeout is None else time.monotonic() + timeout
    if not thread_lock.acquire(timeout=-1 if timeout is None else timeout):
        raise LockTimeout(f"{path.name} stayed locked for {timeout:g} s")
    try:
        with open(path, "a+b") as handle:
            _lock(handle.fileno(), path, deadline, timeout)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        thread_lock.release()


def _lock(fd: int, path: Path, deadline: float | None, timeout: float | None) -> None:
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(f"{path.name} stayed locked for {timeout:g} s") from None
            time.sleep(_POLL)
