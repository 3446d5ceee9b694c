"""Whole images made after the answer, so pulls never apply a long chain of segments.

A push usually uploads a segment (``walsegments``): what its writes changed. A pull
starts from the latest whole image at or before the version it wants and applies every
segment after it, so after ``SNAPSHOT_IMAGE_EVERY`` segments in a row an image of the
latest version is made and recorded on that version's history row. It is cleanup-time
work (after the response is sent): it reads the whole database, which is exactly what
the write's path no longer does.

An image is only recorded for a version the copy held exactly: taken under the copy
lock (no pull or push of this copy meanwhile) from a copy in step with that version,
and checked to hold that version's change count (a writer in the middle of its next
write makes it differ: the image is dropped, the next commit's cleanup tries again). It
takes no lease, so the next write only waits for the copy lock while the image is
read, never for its upload.
"""

import logging

from django.conf import settings

from . import snapshots, userdb, workingcopy
from .filelock import LockTimeout
from .keys import snapshot_key
from .models import SnapshotVersion
from .stores import StoreError, get_store

logger = logging.getLogger(__name__)


def latest_image_version(user_id: int, at_most: int) -> int | None:
    """The latest version at or before ``at_most`` that has a whole image."""
    return (
        SnapshotVersion.objects.filter(user_id=user_id, version__lte=at_most)
        .exclude(image_key="")
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )


def image_due(user_id: int, committed: int) -> bool:
    base = latest_image_version(user_id, committed)
    return base is None or committed - base >= settings.SNAPSHOT_IMAGE_EVERY


def make_image_if_due(user_id: int, committed: int) -> bool:
    """Record a whole image of ``committed`` when the segments since the last one are
    many enough; True when one was made."""
    if not image_due(user_id, committed):
        return False
    try:
        with workingcopy.copy_lock(user_id, timeout=1):
            raw = _read_exact_image(user_id, committed)
    except LockTimeout as exc:
        logger.info("image of user %s version %s postponed: %s", user_id, committed, exc)
        return False
    if raw is None:
        return False  # the copy moved on (or never was this version): the next commit's turn
    # Compressed and uploaded outside the copy lock: only reading the database holds it.
    packed = snapshots.pack_raw(*raw)
    return _upload_and_record(user_id, committed, packed)


def _read_exact_image(user_id: int, committed: int):
    state = workingcopy.read_state(user_id)
    if state.base_version != committed or state.dirty or state.pending:
        return None
    raw, changes = snapshots.take_raw(
        userdb.database_path(user_id), workingcopy.scratch_dir(user_id)
    )
    if changes != state.committed_changes:  # a write landed while it was read
        raw.unlink(missing_ok=True)
        return None
    return raw, changes


def _upload_and_record(user_id: int, committed: int, packed) -> bool:
    key = snapshot_key(user_id, committed)
    store = get_store()
    try:
        store.put_file(key, packed.path)
    except StoreError as exc:
        logger.info("image of user %s version %s postponed: %s", user_id, committed, exc)
        return False
    finally:
        packed.path.unlink(missing_ok=True)
    recorded = SnapshotVersion.objects.filter(
        user_id=user_id, version=committed, image_key=""
    ).update(image_key=key, image_checksum=packed.checksum, image_size_bytes=packed.size_bytes)
    if not recorded:  # retention removed the row meanwhile, or another image won
        _delete_quietly(store, key)
        return False
    logger.info(
        "made an image of user %s version %s (%s bytes)", user_id, committed, packed.size_bytes
    )
    return True


def _delete_quietly(store, key: str) -> None:
    try:
        store.delete(key)
    except StoreError as exc:  # no row names it: garbage for the leftover sweep
        logger.warning("could not delete unrecorded image %s: %s", key, exc)
