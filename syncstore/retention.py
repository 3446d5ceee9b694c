"""Dropping what retention no longer keeps, after the answer has left.

A commit makes version N; versions before ``N - SNAPSHOT_RETENTION + 1`` are no longer
kept for restore. Removing them (their objects in the store, their history rows) and
the media files no retained version needs is cleanup, not durability: it runs after the
response is sent (a request's closers), so a write's path to its answer costs one store
request, the PUT of its snapshot or segment. A retained version made of segments needs
the image its chain starts from and every segment since, so objects are kept from that
image on. Old objects are found from the ``SnapshotVersion`` rows, so no listing is
needed; every ``SNAPSHOT_RETENTION`` versions one listing also removes leftovers no row
names (an upload whose commit was refused or whose process died before committing).
"""

import logging

from django.conf import settings

from . import compaction, mediagc
from .keys import snapshot_prefix, version_of_key
from .models import SnapshotVersion
from .stores import StoreError, get_store

logger = logging.getLogger(__name__)


def oldest_retained(committed: int) -> int:
    """The oldest version kept for restore when ``committed`` is the latest."""
    return max(1, committed - settings.SNAPSHOT_RETENTION + 1)


def first_needed(user_id: int, committed: int) -> int:
    """The oldest version whose objects a retained version still needs: the image the
    oldest retained version's chain starts from."""
    oldest = oldest_retained(committed)
    return compaction.latest_image_version(user_id, oldest) or oldest


def collect(user_id: int, committed: int) -> None:
    """Remove what versions older than the retention alone needed."""
    oldest = oldest_retained(committed)
    keep_from = first_needed(user_id, committed)
    store = get_store()
    old = SnapshotVersion.objects.filter(user_id=user_id, version__lt=keep_from)
    try:
        for object_key, image_key in old.values_list("object_key", "image_key"):
            store.delete(object_key)
            if image_key and image_key != object_key:
                store.delete(image_key)
        if committed % settings.SNAPSHOT_RETENTION == 0:
            _remove_leftovers(store, user_id, keep_from)
    except StoreError as exc:  # they wait for the next commit
        logger.warning("cleanup of user %s postponed: %s", user_id, exc)
        return
    old.delete()
    mediagc.sweep(user_id, oldest)


def _remove_leftovers(store, user_id: int, oldest: int) -> None:
    for key in store.list_keys(snapshot_prefix(user_id)):
        version = version_of_key(key)
        if version is not None and version < oldest:
            store.delete(key)


def after_commit(user_id: int, committed: int) -> None:
    """What follows a commit off its path: an image when one is due, then retention."""
    compaction.make_image_if_due(user_id, committed)
    collect(user_id, committed)


def after_commits(pending) -> None:
    """Run the cleanups a request deferred (``(user_id, committed)`` pairs).

    Runs while Django closes the response, before ``request_finished`` closes the
    request's database connections.
    """
    for user_id, committed in pending:
        try:
            after_commit(user_id, committed)
        except Exception:  # cleanup must never turn a sent answer into an error
            logger.exception("cleanup of user %s failed", user_id)
