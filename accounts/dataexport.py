"""Export my data: a zip of a user's projects, games (JSON) and videos, built in the background.

The zip holds ``projects.json`` (every project with its clips, edits, highlight regions
and videos, and every game with its plays, from the user's database brought up to date
with the store) and the files: each uploaded clip's source, each working and final
video, under ``projects/<id>-<name>/``, and each game's video once, under ``games/``
(a clip made from a play names that file instead of a copy). It is
built where exports run (a Celery worker with ``REDIS_URL``, else a thread of this
process), stored under the user's media prefix (so deleting the account removes it),
and downloadable once, by its owner, within ``DATA_EXPORT_EXPIRY_SECONDS``.
"""

import json
import logging
import re
import tempfile
import threading
import time
import zipfile
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import close_old_connections, transaction
from django.utils import timezone

from syncstore import sync
from syncstore.binding import bound_to_user

from .models import DataExport

logger = logging.getLogger(__name__)
Status = DataExport.Status

COPY_CHUNK = 1024 * 1024
# The row's percent and heartbeat are written at most this often while files are copied.
PROGRESS_EVERY_SECONDS = 1.0
UNFINISHED = (Status.PENDING, Status.BUILDING)


class ExportProblem(Exception):
    """A data export that cannot be built now; its message is for the user."""


# --- Asking for one --------------------------------------------------------------------


def start(user) -> DataExport:
    """A new export of ``user``'s data, queued; the unfinished one if there is one."""
    current = refresh(DataExport.objects.filter(user=user, status__in=UNFINISHED).first())
    if current is not None and current.status in UNFINISHED:
        return current
    export = DataExport.objects.create(user=user, message="Waiting to start")
    transaction.on_commit(lambda: submit(export.pk))
    return export


def submit(export_id) -> None:
    if settings.REDIS_URL:
        from celery import current_app

        # By name: accounts/tasks.py (found by the worker's autodiscovery) imports this
        # module, and this one must not import it back.
        current_app.send_task(
            "accounts.build_data_export", (str(export_id),), queue=settings.EXPORT_QUEUE
        )
        return
    threading.Thread(
        target=_build_in_thread, args=(str(export_id),), name="data-export", daemon=True
    ).start()


def _build_in_thread(export_id: str) -> None:
    try:
        build(export_id)
    finally:
        close_old_connections()  # this thread's own connections, as the export pool does


def refresh(export: DataExport | None) -> DataExport | None:
    """``export`` with what time has done to it: a builder gone quiet has failed, and a
    zip left too long has expired (its file deleted)."""
    if export is None:
        return None
    now = timezone.now()
    if export.status in UNFINISHED:
        quiet = now - export.updated_at > timedelta(seconds=settings.EXPORT_STALE_AFTER)
        if quiet:
            _set(export, status=Status.FAILED, message="The export stopped. Start it again.")
    elif export.status == Status.READY:
        age = now - export.updated_at
        if age > timedelta(seconds=settings.DATA_EXPORT_EXPIRY_SECONDS):
            delete_file(export)
            _set(export, status=Status.EXPIRED, message="Expired: start a new export.")
    return export


def expire_old_exports() -> None:
    """Housekeeping (the periodic pass): expire unfetched zips, fail silent builds."""
    for export in DataExport.objects.filter(status__in=(*UNFINISHED, Status.READY)):
        refresh(export)


# --- Building it -----------------------------------------------------------------------


def build(export_id: str) -> None:
    claimed = DataExport.objects.filter(pk=export_id, status=Status.PENDING).update(
        status=Status.BUILDING, message="Reading your projects", updated_at=timezone.now()
    )
    if not claimed:
        return  # built (or being built) already: a message delivered twice
    export = DataExport.objects.get(pk=export_id)
    try:
        with tempfile.TemporaryDirectory(prefix="data-export-") as tmp:
            path = f"{tmp}/export.zip"
            manifest, files = _read_projects(export.user_id)
            _write_zip(export, path, manifest, files)
            name = f"users/{export.user_id}/dataexports/{export.pk.hex}.zip"
            with open(path, "rb") as handle:
                stored = default_storage.save(name, File(handle, name="export.zip"))
            size = default_storage.size(stored)
    except ExportProblem as exc:
        _set(export, status=Status.FAILED, message=str(exc))
        return
    except Exception:
        logger.exception("data export %s failed", export_id)
        _set(export, status=Status.FAILED, message="The export failed unexpectedly.")
        return
    _set(export, status=Status.READY, percent=100, file=stored, size=size, message="Ready")
    logger.info("data export %s of user %s ready (%d bytes)", export_id, export.user_id, size)


def _read_projects(user_id: int) -> tuple[dict, list[tuple[str, str]]]:
    """The manifest (``projects.json``) and the files to copy, as (storage name, path in
    the zip), from the user's database once it is up to date with the store."""
    from games.models import Game
    from projects.models import Project

    projects, games, files = [], [], []
    with bound_to_user(user_id):
        try:
            sync.ensure_fresh(user_id)
        except sync.SyncUnavailable as exc:
            raise ExportProblem(f"Your latest data could not be loaded: {exc}") from None
        for project in Project.objects.with_status().prefetch_related(
            "clips", "working_videos", "final_videos", "highlight_regions"
        ):
            entry, project_files = _project_entry(project)
            projects.append(entry)
            files.extend(project_files)
        for game in Game.objects.prefetch_related("plays"):
            entry, game_files = _game_entry(game)
            games.append(entry)
            files.extend(game_files)
    manifest = {"exported_at": timezone.now().isoformat(), "projects": projects, "games": games}
    return manifest, files


def _project_entry(project) -> tuple[dict, list[tuple[str, str]]]:
    folder = f"projects/{project.id}-{_slug(project.name)}"
    entry = project.to_dict()
    entry["clips"], entry["working_videos"], entry["final_videos"] = [], [], []
    files = []
    for clip in project.clips.all():
        if clip.owns_file:
            path = f"{folder}/clips/{clip.position:02d}-{clip.id}-{_slug(clip.name)}.mp4"
            files.append((clip.file, path))
        else:  # a play's range of a game: the game's file, copied once under games/
            path = _game_path(clip.game)
        entry["clips"].append({**_without_url(clip.to_dict()), "file": path})
    for key, videos, kind in (
        ("working_videos", project.working_videos.all(), "working"),
        ("final_videos", project.final_videos.all(), "final"),
    ):
        for video in videos:
            path = f"{folder}/{kind}/{video.id}.mp4"
            entry[key].append({**_without_url(video.to_dict()), "file": path})
            files.append((video.file, path))
    entry["highlight_regions"] = [region.to_dict() for region in project.highlight_regions.all()]
    return entry, files


def _game_path(game) -> str:
    extension = game.file.rsplit(".", 1)[-1]
    return f"games/{game.id}-{_slug(game.name)}.{extension}"


def _game_entry(game) -> tuple[dict, list[tuple[str, str]]]:
    entry = {
        key: value
        for key, value in game.to_dict().items()
        if key not in ("url", "poster_url", "filmstrip", "media_job_id")
    }
    entry["file"] = _game_path(game)
    entry["plays"] = [play.to_dict() for play in game.plays.all()]
    return entry, [(game.file, entry["file"])]


def _without_url(data: dict) -> dict:
    # A media URL only works inside the app, signed in: the zip names its own copy instead.
    return {key: value for key, value in data.items() if key != "url"}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "untitled"


def _write_zip(export, path: str, manifest: dict, files: list[tuple[str, str]]) -> None:
    sizes = {name: _size_or_none(name) for name, _ in files}
    manifest["missing_files"] = [arc for name, arc in files if sizes[name] is None]
    total = sum(size for size in sizes.values() if size) or 1
    done, last = 0, 0.0
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("projects.json", json.dumps(manifest, indent=2), zipfile.ZIP_DEFLATED)
        for name, arc in files:
            if sizes[name] is None:
                continue
            # Videos are compressed already: stored as they are, read in chunks.
            with default_storage.open(name, "rb") as source, archive.open(arc, "w") as target:
                while chunk := source.read(COPY_CHUNK):
                    target.write(chunk)
                    done += len(chunk)
                    if time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
                        last = time.monotonic()
                        percent = min(99, int(100 * done / total))
                        _set(export, percent=percent, message=f"Copying your videos ({percent} %)")


def _size_or_none(name: str) -> int | None:
    try:
        return default_storage.size(name)
    except (FileNotFoundError, OSError):
        return None


# --- Handing it over -------------------------------------------------------------------


def take_for_download(user, export_id) -> DataExport | None:
    """The user's ready export, now marked downloaded (so never handed out twice)."""
    taken = DataExport.objects.filter(pk=export_id, user=user, status=Status.READY).update(
        status=Status.DOWNLOADED, downloaded_at=timezone.now(), message="Downloaded"
    )
    return DataExport.objects.get(pk=export_id) if taken else None


def stream_then_delete(export: DataExport):
    """The zip's bytes, in chunks; the file is deleted once they have all been read."""
    try:
        with default_storage.open(export.file, "rb") as handle:
            while chunk := handle.read(COPY_CHUNK):
                yield chunk
    finally:
        delete_file(export)


def delete_file(export: DataExport) -> None:
    if export.file:
        try:
            default_storage.delete(export.file)
        except OSError as exc:  # left for the account's purge, or a later expiry
            logger.warning("data export %s: file not deleted: %s", export.pk, exc)


def _set(export: DataExport, **fields) -> None:
    fields["updated_at"] = timezone.now()
    DataExport.objects.filter(pk=export.pk).update(**fields)
    for key, value in fields.items():
        setattr(export, key, value)


def as_dict(export: DataExport) -> dict:
    return {
        "id": str(export.pk),
        "status": export.status,
        "percent": export.percent,
        "message": export.message,
        "size": export.size,
        "created_at": export.created_at.isoformat(),
        "downloaded_at": export.downloaded_at.isoformat() if export.downloaded_at else None,
    }
