"""Which user databases the current request or task has written to.

Every connection to a user database gets an execute wrapper that notes each write
statement on the request's or task's ``WriteTracker`` (held in a ContextVar, set by the
sync middleware or ``sync.writing()``), so the code that owns the request pushes a
snapshot of each user it wrote to, and attributes a failure to the right user.

Whether a copy *holds* unpushed writes is not tracked here: the change counter inside
the database (``changecounter``) says so exactly, in the same transaction as the write,
whoever made it. The tracker only says who must push before answering.

The tracker is a mutable object inside the ContextVar, not a value swapped in and out:
code running in a copied context (``sync_to_async``, ``asyncio.to_thread``) marks the
same tracker, and concurrent requests each have their own (the product we replace kept
this flag in ``threading.local`` and a concurrent read cleared a long export's flag). A
write arriving after its owner pushed (from a copied context still running) is still
counted in the database, and the periodic retry pushes it.
"""

import threading
from contextlib import contextmanager
from contextvars import ContextVar

from django.db.backends.signals import connection_created
from django.dispatch import receiver

from . import userdb

WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "ALTER", "DROP"})


class WriteTracker:
    def __init__(self):
        self._lock = threading.Lock()
        self._users: set[int] = set()
        # Media whose rows this unit of work deleted: removed only after the deletion
        # is committed and no retained version needs them (mediagc).
        self.dropped_media: dict[int, list[str]] = {}

    def drop_media(self, user_id: int, names) -> None:
        with self._lock:
            self.dropped_media.setdefault(user_id, []).extend(names)

    def note(self, user_id: int) -> None:
        with self._lock:
            self._users.add(user_id)

    @property
    def user_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._users)


_tracker: ContextVar[WriteTracker | None] = ContextVar("reeleditor_write_tracker", default=None)


@contextmanager
def track_writes():
    tracker = WriteTracker()
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


def current_tracker() -> WriteTracker | None:
    return _tracker.get()


def is_write(sql: str) -> bool:
    words = sql.split()
    if not words:
        return False
    verb = words[0].upper()
    if verb == "WITH":  # a common table expression: a write if any write verb follows
        return any(word.upper().strip("(") in WRITE_VERBS for word in words[1:])
    return verb in WRITE_VERBS


def _track_writes(execute, sql, params, many, context):
    if is_write(sql):
        user_id = userdb.user_id_for(context["connection"].alias)
        tracker = _tracker.get()
        if user_id is not None and tracker is not None:
            tracker.note(user_id)
    return execute(sql, params, many, context)


@receiver(connection_created)
def install_write_tracking(sender, connection, **kwargs):
    if userdb.is_user_alias(connection.alias) and _track_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(_track_writes)
