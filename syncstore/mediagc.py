"""Removing media files only once nothing that can still be restored points at them.

A view that deletes a clip or a video hands the file names to ``drop_after_commit``.
Nothing is removed then: the deletion is only a change in the working copy, and that
change may never be committed (the push fails and another machine commits first, so
the committed data still lists the clip). When the push that carries the deletion
commits version N, the names become tombstones "dropped by version N". Versions before
N still reference the files and are kept for restore (``SNAPSHOT_RETENTION``), so the
sweep after each commit removes a file only once the oldest retained version is N or
later.

A deletion whose push fails or is refused leaves its files where they are: at worst a
file outlives its last reference (storage, not data, is lost).
"""

import logging

from django.core.files.storage import default_storage
from django.db import transaction

from . import userdb
from .models import MediaTombstone
from .tracking import current_tracker

logger = logging.getLogger(__name__)


def drop_after_commit(names, *, using: str) -> None:
    """The rows pointing at ``names`` are being deleted in database ``using``."""
    names = [name for name in names if name]
    user_id = userdb.user_id_for(using)
    tracker = current_tracker()
    if not names or user_id is None:
        return
    if tracker is None:
        logger.warning("media %s dropped outside a tracked unit of work: kept", names)
        return
    # Only if the local transaction commits: a rolled-back delete drops nothing.
    transaction.on_commit(lambda: tracker.drop_media(user_id, names), using=using)


def record_dropped(user_id: int, names, version: int) -> None:
    """The deletion of ``names`` is committed in ``version``."""
    # A name already recorded by an earlier commit keeps its version.
    MediaTombstone.objects.bulk_create(
        [MediaTombstone(user_id=user_id, name=name, version=version) for name in names],
        ignore_conflicts=True,
    )


def sweep(user_id: int, oldest_kept: int) -> int:
    """Remove the files no retained version references; returns how many."""
    removed = 0
    for tombstone in MediaTombstone.objects.filter(user_id=user_id, version__lte=oldest_kept):
        try:
            default_storage.delete(tombstone.name)
        except Exception as exc:  # the next sweep tries again
            logger.warning("could not remove media %s: %s", tombstone.name, exc)
            continue
        tombstone.delete()
        removed += 1
    return removed


def keep(user_id: int, names) -> int:
    """``names`` are referenced again (a version restored): no longer dropped."""
    names = [name for name in names if name]
    if not names:
        return 0
    removed, _ = MediaTombstone.objects.filter(user_id=user_id, name__in=names).delete()
    return removed
