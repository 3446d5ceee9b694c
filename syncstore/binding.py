"""Which user's database the current request, task or command is working on.

The binding lives in a ``ContextVar``, never in ``threading.local``: under daphne many
requests share one event loop and thread pool, and the product we replace lost exports
because a concurrent read reset a long write's thread-local state. A ContextVar value is
private to its request or task, is inherited by ``asyncio`` tasks and
``sync_to_async``/``asyncio.to_thread`` calls, and is reset by the code that set it.

Work that starts a bare ``threading.Thread`` or executor job must bind again there (or
run inside ``contextvars.copy_context()``): a new thread starts with no binding, and the
router then raises ``NoUserBound`` instead of writing to the wrong database.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from . import userdb


class NoUserBound(RuntimeError):
    """A per-user model was used with no user database bound."""


@dataclass(frozen=True)
class UserBinding:
    user_id: int
    alias: str
    parent: "UserBinding | None" = None

    def holds(self, alias: str) -> bool:
        binding = self
        while binding is not None:
            if binding.alias == alias:
                return True
            binding = binding.parent
        return False


_current: ContextVar[UserBinding | None] = ContextVar("reeleditor_user_binding", default=None)


def current_binding() -> UserBinding:
    binding = _current.get()
    if binding is None:
        raise NoUserBound(
            "No user database is bound. Per-user models can only be used inside "
            "syncstore.binding.bound_to_user(user_id) (requests are bound by "
            "SyncMiddleware)."
        )
    return binding


def current_binding_or_none() -> UserBinding | None:
    return _current.get()


def current_user_id() -> int:
    return current_binding().user_id


def is_bound() -> bool:
    return _current.get() is not None


@contextmanager
def bound_to_user(user_id: int):
    """Route per-user models to ``user_id``'s database for the enclosed code."""
    alias = userdb.acquire(user_id)
    parent = _current.get()
    binding = UserBinding(int(user_id), alias, parent)
    token = _current.set(binding)
    try:
        yield binding
    finally:
        _current.reset(token)
        if parent is not None and parent.holds(alias):
            # An outer binding of the same user still uses this thread's connection
            # (perhaps inside a transaction): only give back the reference.
            userdb.release(alias, close_connection=False)
        else:
            userdb.release(alias)
