"""Where a user's snapshots and conflict copies live in the store.

``snapshots/<user>/<version, 10 digits>-<uuid>.sqlite3.z``: an immutable image of one
version (the uuid keeps two writers racing for one version from overwriting each
other's object); ``...-<uuid>.segment.z``: the WAL frames a version added to the one
before (``walsegments``); ``conflicts/<user>/<time>-base<N>-<id>.sqlite3.z``.
"""

import uuid


def snapshot_prefix(user_id: int) -> str:
    return f"snapshots/{int(user_id)}/"


def conflict_prefix(user_id: int) -> str:
    return f"conflicts/{int(user_id)}/"


def snapshot_key(user_id: int, version: int) -> str:
    return f"{snapshot_prefix(user_id)}{version:010d}-{uuid.uuid4().hex}.sqlite3.z"


def segment_key(user_id: int, version: int) -> str:
    return f"{snapshot_prefix(user_id)}{version:010d}-{uuid.uuid4().hex}.segment.z"


def version_of_key(key: str) -> int | None:
    head = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return int(head) if head.isdigit() else None
