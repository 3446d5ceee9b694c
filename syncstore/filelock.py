"""An exclusive advisory lock on a file, shared by threads and processes on one host."""

import fcntl
import threading
from contextlib import contextmanager
from pathlib import Path

# flock() locks belong to an open file description, so two threads of one process
# that each open the file do exclude each other; the thread lock below only saves
# them from spinning on the same file twice.
_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


@contextmanager
def file_lock(path: Path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _guard:
        thread_lock = _thread_locks.setdefault(str(path), threading.Lock())
    with thread_lock, open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
