"""Running an export job: one task body for Celery workers and the in-process pool.

``run_job(job_id)`` claims the job (a compare-and-set from pending to processing, so a
job runs once even if queued twice), fetches the sources, renders with progress,
uploads the result to media storage, finalizes it durably, and only then marks the job
complete. The claim numbers the attempt, and every later write is a compare-and-set on
(processing, that attempt): a worker that stalled until its job was marked lost and
retried cannot overwrite the newer attempt's progress or outcome. Where it runs (a
Celery worker or this process's pool) is :mod:`exports.queueing`'s business.
"""

import logging
import os
import shutil
import socket
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import av
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from projects import media
from reeleditor import logs, observability
from syncstore import leases, sync

from . import progress
from .errors import RenderCancelled, RenderError, failure
from .finalize import FinalizeError, finalize
from .models import ExportJob
from .render import ClipSpec, FramingSpec, RegionSpec, RenderResult, even_size

logger = logging.getLogger(__name__)

Status = ExportJob.Status

DONE_MESSAGES = {
    ExportJob.Kind.GAME_MEDIA: "Game ready",
    ExportJob.Kind.FOLLOW_PLAY: "Proposal ready",
}

# Mock mode: a quarter of the output size, the first two seconds, the fastest preset.
MOCK_SCALE = 4
MOCK_SECONDS = 2.0


def run_job(job_id: str) -> None:
    with logs.working_on_job(job_id):  # every log line of the job names it
        _run_job(job_id)


def _run_job(job_id: str) -> None:
    claimed = _claim(job_id)
    if claimed is None:
        return
    job, attempt = claimed
    reporter = progress.ProgressReporter(job, attempt, end=90)
    reporter.update(0, "starting", "Preparing the export")
    with tempfile.TemporaryDirectory(prefix=f"export-{job.id}-") as tmp:
        try:
            outcome = _produce(job, attempt, Path(tmp), reporter)
        except progress.AttemptLost:
            _lost(job, attempt)
        except RenderCancelled:
            # Also how a render stops once its attempt is lost; _finish writes nothing then.
            _finish(job, attempt, Status.CANCELLED, phase="cancelled", message="Export cancelled")
        except RenderError as exc:
            retryable = exc.code in ("disk_full", "encode_failed")
            _fail(job, attempt, exc.code, exc.message, retryable=retryable)
        except FinalizeError as exc:
            _fail(job, attempt, exc.code, exc.message, retryable=exc.retryable)
        except (leases.LeaseTimeout, leases.LeaseUnavailable, sync.SyncUnavailable) as exc:
            message = f"The video could not be saved yet: {exc}"
            _fail(job, attempt, "sync_failed", message, retryable=True)
        except Exception:
            logger.exception("export %s failed", job.id)
            message = "The export failed unexpectedly."
            _fail(job, attempt, "internal_error", message, retryable=True)
        else:
            job.result = {**job.result, **outcome}
            done = DONE_MESSAGES.get(job.kind, "Export complete")
            _finish(job, attempt, Status.COMPLETE, phase="complete", message=done, percent=100)


def _produce(job, attempt, tmp: Path, reporter) -> dict:
    """Do the job's work and commit its outcome; what goes into ``job.result``."""
    if job.kind == ExportJob.Kind.GAME_MEDIA:
        from games.media_job import prepare_game  # games builds on exports, not back

        return prepare_game(job, attempt, tmp, reporter, _cancel_checker(attempt), _local_copy)
    if job.kind == ExportJob.Kind.FOLLOW_PLAY:
        from reframing.job import analyse  # reframing builds on exports, not back

        return analyse(job, attempt, tmp, reporter, _cancel_checker(attempt), _local_copy)
    output_name, result = _render_or_reuse(job, attempt, tmp, reporter)
    reporter.update(92, "saving", "Saving the video")
    with attempt.heartbeat():  # a lost attempt stops here: finalizing is not its to do
        video_id, committed_version = finalize(job, output_name, result)
    key = "working_video_id" if job.kind == "framing" else "final_video_id"
    return {key: video_id, "committed_version": committed_version}


def _claim(job_id: str) -> tuple[ExportJob, progress.Attempt] | None:
    # The attempt number is decided before the write and made part of its condition,
    # rather than read back after it: by then a newer claim could have bumped it.
    seen = ExportJob.objects.filter(pk=job_id, status=Status.PENDING).first()
    if seen is None:
        return None
    number = seen.attempts + 1
    claimed = ExportJob.objects.filter(
        pk=job_id, status=Status.PENDING, attempts=seen.attempts
    ).update(
        status=Status.PROCESSING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        attempts=number,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        phase="starting",
    )
    if not claimed:
        return None
    return ExportJob.objects.get(pk=job_id), progress.Attempt(job_id, number)


def _render_or_reuse(job, attempt, tmp: Path, reporter):
    """The rendered file in media storage: rendered now, or by an earlier attempt."""
    previous = job.result.get("output_name")
    if previous and job.result.get("render") and default_storage.exists(previous):
        return previous, RenderResult(**job.result["render"])
    output = tmp / "output.mp4"
    should_cancel = _cancel_checker(attempt)
    if job.kind == "framing":
        result = _render_framing(job, tmp, output, reporter, should_cancel)
    else:
        result = _render_overlay(job, tmp, output, reporter, should_cancel)
    name = media.new_name(job.user_id, "working" if job.kind == "framing" else "final", "mp4")
    with attempt.heartbeat(), open(output, "rb") as handle:
        media.save(name, File(handle, name=output.name))
    render = {**result.__dict__, "path": ""}
    result_field = {**job.result, "output_name": name, "render": render}
    if job.kind == ExportJob.Kind.OVERLAY:  # the final video's poster, for its share page
        result_field["poster_name"] = _store_poster(job, output, tmp)
    if not attempt.update(result=result_field):
        # Nothing points at the files: a newer attempt renders (or has rendered) its own.
        media.delete(name)
        if result_field.get("poster_name"):
            media.delete(result_field["poster_name"])
        raise progress.AttemptLost(repr(attempt))
    job.result = result_field
    return name, result


def _store_poster(job, video: Path, tmp: Path) -> str:
    """A still of the final video in media storage; "" if none could be made (the video
    is what matters: a share page then has no picture)."""
    from .posters import write_poster

    try:
        still = write_poster(video, tmp / "poster.jpg")
    except (av.FFmpegError, OSError) as exc:
        logger.warning("export %s: no poster (%s)", job.id, exc)
        return ""
    name = media.new_name(job.user_id, "thumbs", "jpg")
    with open(still, "rb") as handle:
        media.save(name, File(handle, name=still.name))
    return name


def _render_framing(job, tmp, output, reporter, should_cancel):
    from .pipeline import render_framing
    from .segments import render_by_segments

    params = job.params
    with ExitStack() as stack:
        paths = {}

        def fetch(name: str) -> str:
            # Once per file: plays of one game share it. Only when a clip is rendered: a
            # reused segment needs no copy of a game that may be gigabytes on S3.
            if name not in paths:
                paths[name] = stack.enter_context(_local_copy(name, tmp))
            return paths[name]

        names = [clip["file"] for clip in params["clips"]]
        if settings.EXPORT_MODE == "mock":  # a quick cut of the start, in one piece
            clips = [_clip_spec(clip, fetch(clip["file"])) for clip in params["clips"]]
            spec = _framing_spec(params, clips, stack)
            return render_framing(
                spec, output, progress=_mock_paced(reporter), should_cancel=should_cancel
            )
        spec = _framing_spec(params, [_clip_spec(clip, "") for clip in params["clips"]], stack)
        result, rendered = render_by_segments(
            spec,
            output,
            cache=segment_cache(),
            # Names never change content; the size also tells a file replaced in place.
            source_ids=[f"{name}:{_size_of(name)}" for name in names],
            fetch=lambda index: fetch(names[index]),
            progress=reporter,
            should_cancel=should_cancel,
        )
        logger.info("export %s: %d of %d segments rendered now, the others reused",
                    job.id, rendered, len(names))  # fmt: skip
        _record_upscale_speed(job, spec.upscaler)
        return result


def _record_upscale_speed(job, upscaler) -> None:
    """Keep what the upscaler measured in ``job.result["upscale_speed"]``: how fast this
    worker ran the model, the basis of later exports' time estimates (upscale_estimate)."""
    if upscaler is None or not getattr(upscaler, "model_pixels", 0):
        return  # no upscaling, or every segment came from the cache
    job.result = {
        **job.result,
        "upscale_speed": {
            "model": upscaler.model["name"],
            "device": upscaler.device,
            "dtype": upscaler.dtype,
            "seconds": round(upscaler.seconds, 4),
            "model_pixels": upscaler.model_pixels,
        },
    }


def _mock_paced(report):
    """Mock mode's progress callback, slowed by EXPORT_MOCK_FRAME_DELAY a rendered frame
    (framing or overlay); the callback itself in real mode and without a delay."""
    delay = settings.EXPORT_MOCK_FRAME_DELAY
    if delay <= 0 or settings.EXPORT_MODE != "mock":
        return report

    def paced(done: int, total: int, phase: str) -> None:
        if phase in ("rendering", "overlay", "remux") and done:
            time.sleep(delay)
        report(done, total, phase)

    return paced


def _size_of(name: str) -> int:
    try:
        return default_storage.size(name)
    except (FileNotFoundError, OSError):
        raise failure("source_missing") from None


def segment_cache():
    from .segments import SegmentCache

    folder = settings.EXPORT_SEGMENT_CACHE_DIR or Path(settings.REELEDITOR_DATA_DIR) / "segments"
    return SegmentCache(folder, settings.EXPORT_SEGMENT_CACHE_BYTES)


def _framing_spec(params, clips, stack) -> FramingSpec:
    width, height = params["output_width"], params["output_height"]
    upscaler = None
    if params.get("upscale"):
        from .upscale import load_upscaler

        upscaler = load_upscaler()
    if settings.EXPORT_MODE == "mock":
        # Same decode, crop, encode, upload, finalize and sync path; just less of it.
        return FramingSpec(
            clips, even_size(width // MOCK_SCALE), even_size(height // MOCK_SCALE),
            preset="ultrafast", max_seconds=MOCK_SECONDS,
        )  # fmt: skip
    return FramingSpec(clips, width, height, preset=settings.EXPORT_PRESET, upscaler=upscaler)


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
    from .overlay import render_overlay

    params = job.params
    regions = [
        RegionSpec(
            start=r["start"], end=r["end"], effect=r["effect"], color=r["color"],
            stroke_width=r["stroke_width"], keyframes=r["keyframes"],
        )
        for r in params["regions"]
    ]  # fmt: skip
    # Jobs queued before presets existed have no "output": the working video's size.
    output_preset = params.get("output") or {}
    size = (output_preset["width"], output_preset["height"]) if output_preset else None
    with _local_copy(params["working_video"]["file"], tmp) as source:
        preset = "ultrafast" if settings.EXPORT_MODE == "mock" else settings.EXPORT_PRESET
        return render_overlay(
            source, regions, output, preset=preset, crf=output_preset.get("crf", 20),
            size=size, title_card=params.get("title_card"),
            progress=_mock_paced(reporter), should_cancel=should_cancel,
        )  # fmt: skip


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


def _cancel_checker(attempt):
    """Stop when asked to, and also when this attempt lost the job (nothing to render for)."""
    last_check = [0.0]

    def should_cancel() -> bool:
        if attempt.lost:
            return True
        now = time.monotonic()
        if now - last_check[0] < 1.0:
            return False
        last_check[0] = now
        cancel_requested = attempt.rows().values_list("cancel_requested", flat=True).first()
        if cancel_requested is None:
            attempt.mark_lost()
            return True
        return cancel_requested

    return should_cancel


FINAL_FIELDS = ("status", "phase", "message", "progress", "result", "finished_at", "error",
                "error_code", "retryable")  # fmt: skip


def _finish(job, attempt, status, *, phase, message, percent=None) -> bool:
    """End the job, if this attempt still holds it; True if it did."""
    job.status = status
    job.phase = phase
    job.message = message
    if percent is not None:
        job.progress = percent
    job.finished_at = timezone.now()
    if not attempt.update(**{field: getattr(job, field) for field in FINAL_FIELDS}):
        _lost(job, attempt)
        return False
    progress.broadcast(job)
    outcome = (job.error_code or "error") if status == Status.ERROR else str(status)
    observability.record_export(job.kind, outcome, _seconds_since(job.started_at))
    return True


def _seconds_since(moment) -> float:
    return (timezone.now() - moment).total_seconds() if moment else 0.0


def _fail(job, attempt, code: str, message: str, *, retryable: bool) -> bool:
    logger.warning("export %s failed: %s (%s)", job.id, message, code)
    job.error_code, job.error, job.retryable = code, message, retryable
    return _finish(job, attempt, Status.ERROR, phase="error", message=message)


def _lost(job, attempt) -> None:
    """This attempt's outcome goes nowhere: whoever took the job over said what it is."""
    try:
        job.refresh_from_db()  # drop what this attempt meant to write
    except ExportJob.DoesNotExist:
        logger.warning("export %s: gone while attempt %s ran", job.id, attempt.number)
        return
    logger.warning(
        "export %s: attempt %s lost the job, which is now %s (attempt %s); its outcome is dropped",
        job.id, attempt.number, job.status, job.attempts,
    )  # fmt: skip
