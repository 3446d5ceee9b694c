"""The periodic retry: every process that holds working copies pushes its dirty ones.

A write whose push failed stays in the working copy, marked dirty on disk; this loop
(with the next write, ``POST /api/sync/retry`` and ``manage.py resync``) is how it
reaches the store once the store is back. It runs in each web process (started by the
first request) and each Celery worker (started when the worker is ready): a dirty copy
lives on one machine's disk, so the retry must run where the copy is; a Celery beat
task would be delivered to any worker, not to the machine holding the copy.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_started = threading.Event()
_guard = threading.Lock()
# Set while the loop is switched off (SYNC_RETRY_INTERVAL <= 0) and runs no pass:
# cleared whenever it reads a positive interval, before it sleeps and runs one.
_paused = threading.Event()
# Housekeeping other apps run on each pass (``every_pass``), after the retries.
_housekeeping: list = []


def every_pass(callback) -> None:
    """Run ``callback()`` on every pass of the loop (accounts deletes due accounts)."""
    if callback not in _housekeeping:
        _housekeeping.append(callback)


def wait_until_paused(timeout: float) -> bool:
    """After switching the loop off: wait until no pass is running or due (tests)."""
    return _paused.wait(timeout)


def ensure_running() -> None:
    """Start the retry loop in this process once (no-op when SYNC_RETRY_INTERVAL is 0)."""
    if _started.is_set() or settings.SYNC_RETRY_INTERVAL <= 0:
        return
    with _guard:
        if _started.is_set():
            return
        thread = threading.Thread(target=_loop, name="sync-retry", daemon=True)
        thread.start()
        _started.set()


def _loop() -> None:
    from . import accounts, sync

    while True:
        interval = settings.SYNC_RETRY_INTERVAL
        if interval > 0:
            _paused.clear()
        time.sleep(interval if interval > 0 else 1)
        if interval <= 0:  # switched off since the loop started: pause
            _paused.set()
            continue
        try:
            for result in sync.retry_dirty_copies():
                logger.info("retry: user %s %s v%s", result.user_id, result.status, result.version)
            for callback in _housekeeping:
                callback()
            # Copies of deleted accounts live on each machine: this loop runs where they are.
            accounts.purge_due_accounts()
        except Exception:  # the loop must outlive any one failure
            logger.exception("periodic sync retry failed")
        finally:
            close_old_connections()
