"""Recording a rendered video in the user's database, durably, exactly once per job.

The product we replace announced "export complete" while the working video was not
saved. Here the order is fixed: the rendered file is already in media storage; the row
is inserted (or found: keyed by job id, so a retry never makes a second one) under the
user's lease; the snapshot is committed; only then does the caller mark the job
complete and announce it.
"""

import logging
import time

from django.conf import settings
from django.db import transaction

from projects.models import Clip, FinalVideo, Project, WorkingVideo
from syncstore import leases, sync
from syncstore.binding import current_binding

from .render import RenderResult

logger = logging.getLogger(__name__)


class FinalizeError(Exception):
    def __init__(self, message: str, code: str, retryable: bool):
        super().__init__(message)
        self.message, self.code, self.retryable = message, code, retryable


def finalize(job, output_name: str, result: RenderResult) -> tuple[int, int]:
    """Insert the job's video row and commit it.

    Returns the video's id and the committed version that holds it: what "complete"
    reports, so the claim can be checked against the store (any later version holds the
    row too, until the user deletes it).
    """
    with sync.writing(job.user_id) as outcome:
        project = Project.objects.filter(pk=job.project_id).first()
        if project is None:
            raise FinalizeError("The project was deleted during the export.", "project_gone", False)
        if job.kind == "framing":
            video_id = _record_working_video(job, project, output_name, result)
        else:
            video_id = _record_final_video(job, project, output_name, result)
    if outcome.ok:
        return video_id, outcome.results[job.user_id].version
    return video_id, push_until_committed(job.user_id)


def _video_fields(job, output_name, result: RenderResult) -> dict:
    return {
        "file": output_name,
        "width": result.width,
        "height": result.height,
        "duration": result.duration,
        "fps": result.fps,
        "frame_count": result.frame_count,
        "size_bytes": result.size_bytes,
        "export_job_id": str(job.id),
    }


def _record_working_video(job, project, output_name, result) -> int:
    existing = WorkingVideo.objects.filter(export_job_id=str(job.id)).first()
    if existing is not None:  # a retry after the row was written but not committed
        return existing.id
    with transaction.atomic(using=current_binding().alias):
        project.working_videos.filter(superseded=False).update(superseded=True)
        video = WorkingVideo.objects.create(
            project=project, **_video_fields(job, output_name, result)
        )
        project.working_video = video
        project.save(update_fields=["working_video", "updated_at"])
        clip_ids = [clip["id"] for clip in job.params["clips"]]
        Clip.objects.filter(project=project, id__in=clip_ids).update(
            exported_at=job.params["edits_as_of"]
        )
    return video.id


def _record_final_video(job, project, output_name, result) -> int:
    existing = FinalVideo.objects.filter(export_job_id=str(job.id)).first()
    if existing is not None:
        return existing.id
    working_id = job.params["working_video"]["id"]
    video = FinalVideo.objects.create(
        project=project,
        working_video=WorkingVideo.objects.filter(pk=working_id).first(),
        poster=job.result.get("poster_name", ""),
        **_video_fields(job, output_name, result),
    )
    return video.id


def push_until_committed(user_id: int) -> int:
    """The commit failed (store down?): retry a few times, then give up retryably.
    Returns the committed version."""
    last = None
    for delay in settings.EXPORT_FINALIZE_RETRY_DELAYS:
        time.sleep(delay)
        try:
            with leases.lease(user_id):
                last = sync.push(user_id)
        except (leases.LeaseTimeout, leases.LeaseUnavailable) as exc:
            last = sync.SyncResult(user_id, "failed", 0, str(exc))
        if last.ok:
            return last.version
    raise FinalizeError(
        "The video was rendered but could not be saved to storage yet. Retry in a moment.",
        "sync_failed",
        True,
    ) from None
