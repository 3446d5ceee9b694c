"""Starting, cancelling, retrying and watching export jobs (the API's domain)."""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from projects import presets
from projects.models import Project

from . import progress, queueing
from .models import ExportJob

logger = logging.getLogger(__name__)

Status = ExportJob.Status


class ExportRefused(Exception):
    """The project is not ready for this export; ``message`` says why, ``code`` for the API."""

    def __init__(self, message: str, code: str, status: int = 409):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


def framing_params(project: Project, *, upscale: bool) -> dict:
    clips = list(project.clips.all())
    if not clips:
        raise ExportRefused("Upload a clip before exporting.", "no_clips")
    width, height = project.output_size
    return {
        "output_width": width,
        "output_height": height,
        "upscale": upscale,
        # Clips edited up to this moment are in this export (see Clip.exported_at).
        "edits_as_of": timezone.now().isoformat(),
        "clips": [
            {
                "id": clip.id,
                "file": clip.file,
                "width": clip.width,
                "height": clip.height,
                "fps": clip.fps,
                "duration": clip.duration,
                "has_audio": clip.has_audio,
                "crop_keyframes": clip.crop_keyframes,
                "trim": [clip.trim_start, clip.trim_end] if clip.trim_start is not None else None,
                "segments": clip.segments,
            }
            for clip in clips
        ],
    }


def overlay_params(project: Project) -> dict:
    video = project.working_video
    if video is None:
        raise ExportRefused("Export required for overlay mode.", "working_video_required")
    # The presets as they are now: editing them during the export changes the next one.
    output = presets.final_output(project, video.width, video.height)
    return {
        "working_video": {"id": video.id, "file": video.file, "width": video.width,
                          "height": video.height, "fps": video.fps},
        "regions": [region.to_dict() for region in project.highlight_regions.all()],
        "output": {"width": output.width, "height": output.height, "crf": output.crf},
        "title_card": output.title_card,
    }  # fmt: skip


def start_export(user, project: Project, kind: str, *, upscale: bool = False):
    """Create and queue an export; returns ``(job, created)``.

    A project has at most one active export per kind: asking again returns the running
    one. The database's partial unique index decides, so two racing requests cannot
    both start one.
    """
    if kind not in ExportJob.EXPORT_KINDS:
        raise ExportRefused("kind must be framing or overlay.", "invalid_kind", 400)
    active = _active_job(user, project.id, kind)
    if active is not None:
        return active, False
    if upscale:
        _check_upscaling_available()
    params = (
        framing_params(project, upscale=upscale) if kind == "framing" else overlay_params(project)
    )
    return create_unique(user, project.id, project.name, kind, params)


def create_unique(user, project_id, project_name, kind, params) -> tuple[ExportJob, bool]:
    """Create and queue a job, or return the active one of this kind for the project
    (or game): ``(job, created)``.

    The database's partial unique index on active jobs decides, so two racing requests
    cannot both start one; the job is queued once its row is committed.
    """
    while True:
        try:
            with transaction.atomic(using="default"):
                job = ExportJob.objects.create(
                    user=user,
                    project_id=project_id,
                    project_name=project_name,
                    kind=kind,
                    params=params,
                )
                transaction.on_commit(partial(enqueue, job.id), using="default")
            return job, True
        except IntegrityError:
            running = _active_job(user, project_id, kind)
            if running is not None:
                return running, False
            # It ended between the insert and the look-up: try again.


def _active_job(user, project_id, kind) -> ExportJob | None:
    job = (
        ExportJob.objects.filter(
            user=user, project_id=project_id, kind=kind, status__in=ExportJob.ACTIVE
        )
        .order_by("-created_at")
        .first()
    )
    if job is not None and mark_if_lost(job):
        return None
    return job


def _check_upscaling_available() -> None:
    from .upscale import availability

    info = availability()
    if not info["available"]:
        raise ExportRefused(f"AI upscaling is unavailable: {info['reason']}", "upscale_unavailable")


def enqueue(job_id) -> None:
    queueing.submit(job_id)


def cancel(job: ExportJob) -> ExportJob:
    """Ask the job to stop. A pending job stops at once; a running one at its next check."""
    ExportJob.objects.filter(pk=job.pk, status__in=ExportJob.ACTIVE).update(cancel_requested=True)
    stopped = ExportJob.objects.filter(pk=job.pk, status=Status.PENDING).update(
        status=Status.CANCELLED, finished_at=timezone.now(), phase="cancelled"
    )
    job.refresh_from_db()
    if stopped:
        progress.broadcast(job)
    return job


def retry(job: ExportJob) -> ExportJob:
    """Run a failed job again. Work already done (the rendered file) is reused."""
    if job.status != Status.ERROR or not job.retryable:
        raise ExportRefused(
            "Only a failed export that can be retried can be retried.", "not_retryable"
        )
    try:
        with transaction.atomic(using="default"):
            # The failure the caller saw, not a later attempt's (which may not be retryable).
            failed = ExportJob.objects.filter(
                pk=job.pk, status=Status.ERROR, attempts=job.attempts, retryable=True
            )
            updated = failed.update(
                status=Status.PENDING, error="", error_code="", retryable=False,
                cancel_requested=False, finished_at=None, phase="queued", message="",
            )  # fmt: skip
            if updated:
                transaction.on_commit(lambda: enqueue(job.id), using="default")
    except IntegrityError:
        raise ExportRefused(
            "Another export of this project is already running.", "export_running"
        ) from None
    job.refresh_from_db()
    progress.broadcast(job)
    return job


def mark_if_lost(job: ExportJob) -> bool:
    """Deal with a job its worker lost; True if the job was changed.

    A processing job whose heartbeat stopped ends as a retryable error. A job still
    pending long after it was queued (the process holding the in-process queue
    restarted, or a broker lost the message) is queued again; the runner's claim makes
    sure it runs once however often it is queued.
    """
    if job.status == Status.PENDING:
        _requeue_if_stranded(job)
        return False
    if job.status != Status.PROCESSING or job.heartbeat_at is None:
        return False
    limit = timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER)
    if job.heartbeat_at >= limit:
        return False
    # The attempt that went quiet, not a newer one that claimed the job since it was read.
    lost = ExportJob.objects.filter(
        pk=job.pk, status=Status.PROCESSING, attempts=job.attempts, heartbeat_at__lt=limit
    )
    if not lost.update(
        status=Status.ERROR,
        error_code="worker_lost",
        error="The export stopped unexpectedly (its worker went away). Try again.",
        retryable=True,
        finished_at=timezone.now(),
    ):
        return False
    job.refresh_from_db()
    logger.warning("export %s lost its worker %s", job.id, job.worker)
    progress.broadcast(job)
    return True


def _requeue_if_stranded(job: ExportJob) -> None:
    limit = timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER)
    # Touching created_at spaces out re-queues of a job that is merely waiting its turn.
    if ExportJob.objects.filter(pk=job.pk, status=Status.PENDING, created_at__lt=limit).update(
        created_at=timezone.now()
    ):
        logger.warning("export %s was stranded in the queue; queued again", job.id)
        enqueue(job.id)


def sweep_lost_jobs() -> int:
    """Mark every job whose worker went away; returns how many.

    Run when a worker starts (a Celery worker is ready, this process starts its export
    pool): what was processing on a worker that went away is found at once, not only
    when someone next looks at it.
    """
    limit = timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER)
    stale = ExportJob.objects.filter(status=Status.PROCESSING, heartbeat_at__lt=limit)
    return sum(mark_if_lost(job) for job in stale)
