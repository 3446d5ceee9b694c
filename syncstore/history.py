"""Version history: the retained versions of a user's data, previewed and restored.

Every commit is a version (``SnapshotVersion``), and retention keeps the last
``SNAPSHOT_RETENTION`` of them restorable (``retention.oldest_retained``). This module
lists those versions with what each holds in counts (projects, clips, keyframes,
highlight regions, games, plays) and how that changed from the version before, shows
one version read-only, and restores one.

**Counting costs store requests.** A version is an image or a segment applied to the
version before (``walsegments``), so knowing what version K holds means assembling it:
the nearest whole image at or before K, then each segment after it, from the store,
into a scratch file here, queried read-only with ``sqlite3``. The counts of a version
never change, so they are kept in ``VersionSummary`` (central database) once known.
Listing counts only the versions it has no summary for, oldest first, and goes from one
version to the next by applying the next segment to the image it already has: the first
listing of ten versions costs one image and the segments up to the newest; afterwards a
listing costs one query, and each new version one assembly, on the first listing after
it. A preview assembles its version each time (one image and at most
``SNAPSHOT_IMAGE_EVERY - 1`` segments) and keeps nothing.

**A restore is a write like any other.** Under the user's lease, on a copy brought up
to the committed version N, the assembled version K (upgraded to the current schema) is
installed into the working copy, which is then pushed and committed as version N + 1
with the usual compare-and-set on (version, fence). Nothing is overwritten: N is still
there, so a restore is undone by restoring N. Unpushed writes in the copy are pushed
first; if they cannot be, the restore is refused (``RestoreRefused``, code
``unsaved_changes``) rather than drop them. The restored image's change counter is set
above the copy's, so the count only ever grows (``changecounter``).

**Media.** Files a retained version references are kept (``mediagc``: a file dropped
by version D is removed once the oldest retained version is D or later). A restore
brings back rows that point at files a later version dropped, so it withdraws their
tombstones before its push: the file is never removed while a version that can still
be committed references it (at worst, if that push never commits, a file outlives its
last reference).
"""

import logging
import re
import sqlite3
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.core.files.storage import default_storage

from . import leases, mediagc, retention, snapshots, sync, userdb, workingcopy
from .binding import bound_to_user
from .models import SnapshotVersion, SyncState, VersionSummary
from .stores import SnapshotMissing, StoreError

logger = logging.getLogger(__name__)

COUNTED = ("projects", "clips", "keyframes", "regions", "games", "plays")

# Read-only queries on a version's database. A table a version's schema did not have
# yet counts as empty.
_JSON_LENGTH = "CASE WHEN json_valid({0}) THEN json_array_length({0}) ELSE 0 END"
_COUNT_QUERIES = {
    "projects": ["SELECT COUNT(*) FROM projects_project"],
    "clips": ["SELECT COUNT(*) FROM projects_clip"],
    # Crop keyframes of the clips and keyframes of the highlight regions.
    "keyframes": [
        f"SELECT COALESCE(SUM({_JSON_LENGTH.format('crop_keyframes')}), 0) FROM projects_clip",
        f"SELECT COALESCE(SUM({_JSON_LENGTH.format('keyframes')}), 0) "
        "FROM projects_highlightregion",
    ],
    "regions": ["SELECT COUNT(*) FROM projects_highlightregion"],
    "games": ["SELECT COUNT(*) FROM games_game"],
    "plays": ["SELECT COUNT(*) FROM games_play"],
}


class VersionNotFound(Exception):
    """No such retained version of this user's data (a 404, like another user's)."""


class RestoreRefused(Exception):
    """The restore was not done; ``code`` says why (``unsaved_changes``, ...)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class VersionEntry:
    version: int
    committed_at: datetime
    counts: dict | None  # None: the snapshot could not be read now
    changes: dict = field(default_factory=dict)  # name -> difference from the version before
    restored_from: int | None = None
    current: bool = False

    @property
    def change_list(self) -> list[tuple[str, int]]:
        """``(label, difference)`` of each count that changed: ``("clip", 1)``."""
        return [
            (name if abs(delta) != 1 else name.removesuffix("s"), delta)
            for name in COUNTED
            if (delta := self.changes.get(name))
        ]


@dataclass(frozen=True)
class Preview:
    version: int
    committed_at: datetime
    current: bool
    counts: dict
    projects: list[dict]
    games: list[dict]


@dataclass(frozen=True)
class Restored:
    """What a restore did: ``result`` is the push of the restored copy."""

    restored_from: int
    result: sync.SyncResult
    missing_media: list[str]

    @property
    def version(self) -> int:
        return self.result.version


# --- Which versions -----------------------------------------------------------------------


def _committed(user_id: int) -> int:
    row = sync.registry_row(user_id)
    return row.version if row else 0


def _retained_rows(user_id: int, committed: int):
    if committed == 0:
        return SnapshotVersion.objects.none()
    return SnapshotVersion.objects.filter(
        user_id=user_id,
        version__gte=retention.oldest_retained(committed),
        version__lte=committed,
    )


def _retained_row(user_id: int, version: int, committed: int) -> SnapshotVersion:
    if not 0 < version < 2**63:  # no such number in the database, nor a version
        raise VersionNotFound(f"no version {version} is kept")
    row = _retained_rows(user_id, committed).filter(version=version).first()
    if row is None:
        raise VersionNotFound(f"no version {version} is kept")
    return row


# --- Listing ------------------------------------------------------------------------------


def versions(user_id: int) -> list[VersionEntry]:
    """The retained versions, newest first, with their counts and changes.

    Counts not known yet are read from the store here (see the module's docstring).
    """
    committed = _committed(user_id)
    rows = list(_retained_rows(user_id, committed).order_by("version"))
    if rows:
        VersionSummary.objects.filter(user_id=user_id, version__lt=rows[0].version).delete()
    known = VersionSummary.objects.filter(user_id=user_id, version__in=[r.version for r in rows])
    summaries = {summary.version: summary for summary in known}
    missing = [
        row
        for row in rows
        if row.version not in summaries or summaries[row.version].object_key != row.object_key
    ]
    for row, counts in _count_versions(user_id, missing):
        summary, _ = VersionSummary.objects.update_or_create(
            user_id=user_id,
            version=row.version,
            defaults={"object_key": row.object_key, "counts": counts},
        )
        summaries[row.version] = summary
    entries = []
    before = None
    for row in rows:
        summary = summaries.get(row.version)
        counts = summary.counts if summary else None
        changes = {}
        if counts is not None and before is not None:
            changes = {name: counts.get(name, 0) - before.get(name, 0) for name in COUNTED}
        entries.append(
            VersionEntry(
                version=row.version,
                committed_at=row.committed_at,
                counts=counts,
                changes=changes,
                restored_from=summary.restored_from if summary else None,
                current=row.version == committed,
            )
        )
        before = counts
    return entries[::-1]


def _count_versions(user_id: int, rows):
    """``(row, counts)`` for each of ``rows`` (oldest first) that could be read.

    Consecutive versions share one scratch image: a segment is applied to the version
    before it, so only the first version of a run is assembled from an image.
    """
    folder = sync.workdir(user_id)
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f".{uuid.uuid4().hex}.history"
    at = None  # the version the scratch image holds
    try:
        for row in rows:
            try:
                if (
                    at is not None
                    and at == row.version - 1
                    and row.kind == SnapshotVersion.Kind.SEGMENT
                ):
                    steps = [(row.kind, row.object_key, row.checksum)]
                else:
                    image.unlink(missing_ok=True)
                    steps = sync.snapshot_chain(user_id, _as_registry_row(row))
                for kind, key, checksum in steps:
                    sync._fetch_into(image, kind, key, checksum, folder)
                at = row.version
                counts = count(image)
            except (StoreError, SnapshotMissing, snapshots.SnapshotCorrupt, sqlite3.Error) as exc:
                logger.warning(
                    "user %s: version %s cannot be counted: %s", user_id, row.version, exc
                )
                at = None
                continue
            except Exception:  # a corrupt segment, a page that does not fit: not counted
                logger.exception("user %s: version %s cannot be counted", user_id, row.version)
                at = None
                continue
            yield row, counts
    finally:
        image.unlink(missing_ok=True)
        snapshots.remove_side_files(image)


def _as_registry_row(row: SnapshotVersion) -> SyncState:
    """Version ``row`` in the shape ``sync`` assembles a committed version from."""
    return SyncState(
        user_id=row.user_id, version=row.version, object_key=row.object_key, checksum=row.checksum
    )


@contextmanager
def _read_only(path: Path):
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()
        snapshots.remove_side_files(path)  # a WAL-mode file opened leaves -shm beside it


def count(path: Path) -> dict:
    """What the database file at ``path`` holds, in ``COUNTED`` counts."""
    counts = {}
    with _read_only(path) as conn:
        for name, queries in _COUNT_QUERIES.items():
            total = 0
            for query in queries:
                try:
                    total += int(conn.execute(query).fetchone()[0] or 0)
                except sqlite3.OperationalError as exc:
                    if "no such table" not in str(exc):
                        raise
            counts[name] = total
    return counts


# --- One version --------------------------------------------------------------------------


@contextmanager
def _assembled(user_id: int, row: SnapshotVersion):
    """Version ``row`` as a scratch database file (upgraded to the current schema)."""
    folder = sync.workdir(user_id)
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f".{uuid.uuid4().hex}.version"
    try:
        sync._download(user_id, _as_registry_row(row), image)
        yield image
    finally:
        image.unlink(missing_ok=True)
        snapshots.remove_side_files(image)


def preview(user_id: int, version: int) -> Preview:
    """Version ``version`` read-only: its projects (clips, keyframes, regions) and games.

    Raises VersionNotFound, or ``sync.SyncUnavailable`` when the store cannot give it.
    """
    committed = _committed(user_id)
    row = _retained_row(user_id, version, committed)
    with _assembled(user_id, row) as image:
        counts = count(image)
        with _read_only(image) as conn:
            projects, games = _contents(conn)
    return Preview(version, row.committed_at, version == committed, counts, projects, games)


def _contents(conn) -> tuple[list[dict], list[dict]]:
    projects = {}
    query = "SELECT id, name, aspect_ratio FROM projects_project ORDER BY created_at DESC, id DESC"
    for pk, name, aspect in conn.execute(query):
        projects[pk] = {"name": name, "aspect_ratio": aspect, "clips": [], "regions": 0}
        projects[pk]["region_keyframes"] = 0
    query = (
        f"SELECT project_id, name, duration, {_JSON_LENGTH.format('crop_keyframes')} "
        "FROM projects_clip ORDER BY project_id, position, id"
    )
    for project_id, name, duration, keyframes in conn.execute(query):
        clip = {"name": name, "duration": duration, "keyframes": keyframes or 0}
        projects[project_id]["clips"].append(clip)
    query = (
        f"SELECT project_id, COUNT(*), COALESCE(SUM({_JSON_LENGTH.format('keyframes')}), 0) "
        "FROM projects_highlightregion GROUP BY project_id"
    )
    for project_id, regions, keyframes in conn.execute(query):
        projects[project_id]["regions"] = regions
        projects[project_id]["region_keyframes"] = keyframes
    query = (
        "SELECT g.name, (SELECT COUNT(*) FROM games_play p WHERE p.game_id = g.id) "
        "FROM games_game g ORDER BY g.played_on DESC, g.created_at DESC, g.id DESC"
    )
    games = [{"name": name, "plays": plays} for name, plays in conn.execute(query)]
    return list(projects.values()), games


# --- Restoring ----------------------------------------------------------------------------


def restore(user_id: int, version: int) -> Restored:
    """Commit retained version ``version`` again, as the next version.

    Under the user's lease (the request's, when it holds it), like any write. Raises
    VersionNotFound, RestoreRefused (unpushed writes that cannot be pushed first, or
    the version is the current one) or ``sync.SyncUnavailable``. The result's status
    says what happened to the restored copy: ``ok`` (committed), ``failed`` (kept in
    this copy, pushed on retry) or ``conflict`` (another writer won; kept as a conflict
    copy).
    """
    with leases.lease(user_id), bound_to_user(user_id):
        sync.ensure_fresh(user_id)
        if workingcopy.read_state(user_id).dirty:
            pushed = sync.push(user_id)  # never drop unpushed writes
            if not pushed.ok:
                raise RestoreRefused(
                    "Your latest changes are not saved yet, so nothing was restored: "
                    f"{pushed.error or 'try again in a moment.'}",
                    "unsaved_changes",
                )
        committed = _committed(user_id)  # only this lease's holder can move it now
        row = _retained_row(user_id, version, committed)
        if version == committed:
            raise RestoreRefused(
                f"Version {version} is already the current version.", "current_version"
            )
        with _assembled(user_id, row) as image:
            counts = count(image)
            names = referenced_media(image, user_id)
            with sync._locked_copy(user_id):
                state = workingcopy.read_state(user_id)
                _count_above(image, max(state.live_changes or 0, state.committed_changes or 0))
                try:
                    snapshots.install(image, userdb.database_path(user_id))
                except snapshots.SnapshotCorrupt as exc:
                    raise sync.SyncUnavailable(
                        f"restoring version {version} failed: {exc}"
                    ) from exc
                workingcopy.mark_dirty(user_id)  # and the next push is a whole image
        # Before the push: no sweep may remove a file the restored rows point at.
        mediagc.keep(user_id, names)
        result = sync.push(user_id)
    if result.ok:
        VersionSummary.objects.update_or_create(
            user_id=user_id,
            version=result.version,
            defaults={
                "object_key": sync.registry_row(user_id).object_key,
                "counts": counts,
                "restored_from": version,
            },
        )
    logger.info("user %s: restored version %s (%s)", user_id, version, result.status)
    missing = [name for name in names if not default_storage.exists(name)]
    return Restored(version, result, missing)


def _count_above(image: Path, changes: int) -> None:
    """Set the image's change counter above ``changes`` (the counter only grows)."""
    conn = sqlite3.connect(image)
    try:
        with conn:
            conn.execute("UPDATE syncstore_changes SET n = max(n, ?) + 1 WHERE id = 1", [changes])
    finally:
        conn.close()


def referenced_media(path: Path, user_id: int) -> list[str]:
    """The media names of ``user_id`` that the database file at ``path`` mentions."""
    pattern = re.compile(rf"users/{int(user_id)}/[a-z]+/[0-9a-f]{{32}}\.[a-z0-9]{{2,4}}")
    names = set()
    with _read_only(path) as conn:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith(("sqlite_", "django_", "syncstore_"))
        ]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            for values in conn.execute(f"SELECT * FROM {quoted}"):
                for value in values:
                    if isinstance(value, str) and "users/" in value:
                        names.update(pattern.findall(value))
    return sorted(names)
