"""Running an export job: one task body for Celery workers and the in-process pool.

``run_job(job_id)`` claims the job (a compare-and-set from pending to processing, so a
job runs once even if queued twice), fetches the sources, renders with progress,
uploads the result to media storage, finalizes it durably, and only then marks the job
complete. With ``REDIS_URL`` set, jobs go to Celery (workers may be other machines, GPU
machines for AI upscaling); otherwise to a small thread pool in this process.
"""

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

from projects import media
from syncstore import leases, sync

from . import progress
from .finalize import FinalizeError, finalize
from .models import ExportJob
from .render import ClipSpec, FramingSpec, RenderCancelled, RenderError, RenderResult

logger = logging.getLogger(__name__)

Status = ExportJob.Status

# Mock mode: a quarter of the output size, the first two seconds, the fastest preset.
MOCK_SCALE = 4
MOCK_SECONDS = 2.0


# --- Queueing -------------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_guard = threading.Lock()


def submit(job_id) -> None:
    if settings.REDIS_URL:
        from .tasks import run_export_job

        run_export_job.delay(str(job_id))
        return
    _local_pool().submit(_run_in_pool, str(job_id))


def _local_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_guard:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.EXPORT_WORKERS, thread_name_prefix="export"
            )
        return _pool


def _run_in_pool(job_id: str) -> None:
    # A pool thread starts with no request context and must manage its own connections.
    close_old_connections()
    try:
        run_job(job_id)
    except Exception:
        logger.exception("export %s crashed", job_id)
    finally:
        close_old_connections()


# --- The task body --------------------------------------------------------------------


def run_job(job_id: str) -> None:
    job = _claim(job_id)
    if job is None:
        return
    reporter = progress.ProgressReporter(job, end=90)
    reporter.update(0, "starting", "Preparing the export")
    with tempfile.TemporaryDirectory(prefix=f"export-{job.id}-") as tmp:
        try:
            output_name, result = _render_or_reuse(job, Path(tmp), reporter)
            reporter.update(92, "saving", "Saving the video")
            video_id = finalize(job, output_name, result)
        except RenderCancelled:
            _finish(job, Status.CANCELLED, phase="cancelled", message="Export cancelled")
        except RenderError as exc:
            _fail(job, exc.code, exc.message, retryable=exc.code in ("disk_full", "encode_failed"))
        except FinalizeError as exc:
            _fail(job, exc.code, exc.message, retryable=exc.retryable)
        except (leases.LeaseTimeout, leases.LeaseUnavailable, sync.SyncUnavailable) as exc:
            _fail(job, "sync_failed", f"The video could not be saved yet: {exc}", retryable=True)
        except Exception:
            logger.exception("export %s failed", job.id)
            _fail(job, "internal_error", "The export failed unexpectedly.", retryable=True)
        else:
            key = "working_video_id" if job.kind == "framing" else "final_video_id"
            job.result = {**job.result, key: video_id}
            _finish(job, Status.COMPLETE, phase="complete", message="Export complete", percent=100)


def _claim(job_id: str) -> ExportJob | None:
    claimed = ExportJob.objects.filter(pk=job_id, status=Status.PENDING).update(
        status=Status.PROCESSING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        attempts=F("attempts") + 1,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        phase="starting",
    )
    return ExportJob.objects.get(pk=job_id) if claimed else None


def _render_or_reuse(job, tmp: Path, reporter):
    """The rendered file in media storage: rendered now, or by an earlier attempt."""
    previous = job.result.get("output_name")
    if previous and job.result.get("render") and default_storage.exists(previous):
        return previous, RenderResult(**job.result["render"])
    output = tmp / "output.mp4"
    should_cancel = _cancel_checker(job)
    if job.kind == "framing":
        result = _render_framing(job, tmp, output, reporter, should_cancel)
    else:
        result = _render_overlay(job, tmp, output, reporter, should_cancel)
    name = media.new_name(job.user_id, "working" if job.kind == "framing" else "final", "mp4")
    with open(output, "rb") as handle:
        media.save(name, File(handle, name=output.name))
    render = {**result.__dict__, "path": ""}
    job.result = {**job.result, "output_name": name, "render": render}
    ExportJob.objects.filter(pk=job.pk).update(result=job.result)
    return name, result


def _render_framing(job, tmp, output, reporter, should_cancel):
    from .pipeline import render_framing

    params = job.params
    with ExitStack() as stack:
        clips = [
            _clip_spec(clip, stack.enter_context(_local_copy(clip["file"], tmp)))
            for clip in params["clips"]
        ]
        spec = _framing_spec(params, clips, stack)
        return render_framing(spec, output, progress=reporter, should_cancel=should_cancel)


def _framing_spec(params, clips, stack) -> FramingSpec:
    width, height = params["output_width"], params["output_height"]
    upscaler = None
    if params.get("upscale"):
        from .upscale import load_upscaler

        upscaler = load_upscaler()
    if settings.EXPORT_MODE == "mock":
        # Same decode, crop, encode, upload, finalize and sync path; just less of it.
        return FramingSpec(
            clips, _even(width // MOCK_SCALE), _even(height // MOCK_SCALE),
            preset="ultrafast", max_seconds=MOCK_SECONDS,
        )  # fmt: skip
    return FramingSpec(clips, width, height, preset=settings.EXPORT_PRESET, upscaler=upscaler)


def _even(value: int) -> int:
    return value - value % 2


def _clip_spec(clip: dict, path: str) -> ClipSpec:
    return ClipSpec(
        path=path,
        width=clip["width"],
        height=clip["height"],
        fps=clip["fps"],
        duration=clip["duration"],
        crop_keyframes=clip["crop_keyframes"],
        trim=tuple(clip["trim"]) if clip["trim"] else None,
        segments=clip["segments"],
        has_audio=clip["has_audio"],
    )


def _render_overlay(job, tmp, output, reporter, should_cancel):
    from .overlay import RegionSpec, render_overlay

    params = job.params
    regions = [
        RegionSpec(
            start=r["start"], end=r["end"], effect=r["effect"], color=r["color"],
            stroke_width=r["stroke_width"], keyframes=r["keyframes"],
        )
        for r in params["regions"]
    ]  # fmt: skip
    with _local_copy(params["working_video"]["file"], tmp) as source:
        preset = "ultrafast" if settings.EXPORT_MODE == "mock" else settings.EXPORT_PRESET
        return render_overlay(
            source, regions, output, preset=preset, progress=reporter, should_cancel=should_cancel
        )


class _local_copy:
    """A local path for a media file: the file itself, or a download from remote storage."""

    def __init__(self, name: str, tmp: Path):
        self.name, self.tmp = name, tmp
        self.downloaded = None

    def __enter__(self) -> str:
        try:
            return default_storage.path(self.name)
        except NotImplementedError:
            pass
        self.downloaded = self.tmp / f"source-{os.urandom(6).hex()}{Path(self.name).suffix}"
        with default_storage.open(self.name, "rb") as src, open(self.downloaded, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        return str(self.downloaded)

    def __exit__(self, *exc):
        if self.downloaded is not None:
            self.downloaded.unlink(missing_ok=True)


def _cancel_checker(job):
    last_check = [0.0]

    def should_cancel() -> bool:
        now = time.monotonic()
        if now - last_check[0] < 1.0:
            return False
        last_check[0] = now
        return ExportJob.objects.filter(pk=job.pk, cancel_requested=True).exists()

    return should_cancel


def _finish(job, status, *, phase, message, percent=None) -> None:
    job.status = status
    job.phase = phase
    job.message = message
    if percent is not None:
        job.progress = percent
    job.finished_at = timezone.now()
    job.save(
        update_fields=["status", "phase", "message", "progress", "result", "finished_at",
                       "error", "error_code", "retryable"]
    )  # fmt: skip
    progress.broadcast(job)


def _fail(job, code: str, message: str, *, retryable: bool) -> None:
    logger.warning("export %s failed: %s (%s)", job.id, message, code)
    job.error_code, job.error, job.retryable = code, message, retryable
    _finish(job, Status.ERROR, phase="error", message=message)
