""" "Follow the play" as a background job: analyse one clip, keep the proposal.

It runs as an ``exports.ExportJob`` of kind ``follow_play`` (the same queue, claim,
heartbeats, WebSocket progress, cancel and lost-job sweep as an export), never in a
request: the analysis decodes the whole clip. ``project_id`` is the clip's project.

The proposal is the job's result (``result["proposal"]``, central database) and nothing
else: the user's data is not touched. Accepting it is the editor's ordinary edit (the
keyframes PATCHed like hand-made ones, autosaved and undoable); discarding it is
forgetting it.
"""

from pathlib import Path

import av
from django.conf import settings

from exports import jobs
from exports.errors import RenderCancelled, RenderError
from exports.models import ExportJob

from . import detectors, propose, vision


def params_for(project, clip) -> dict:
    start, end = clip.bounds
    if clip.trim_start is not None:
        start, end = clip.trim_start, clip.trim_end
    return {
        "clip_id": clip.id,
        "file": clip.file,
        "aspect": project.aspect_value,
        "start": start,
        "end": end,
    }


def start(user, project, clip) -> tuple[ExportJob, bool]:
    """Queue the analysis of ``clip`` (or find the one running for the project)."""
    if not clip.width or not clip.duration:
        raise jobs.ExportRefused("This clip has not been read yet.", "clip_not_ready")
    # One analysis at a time per project.
    return jobs.create_unique(
        user, project.id, project.name, ExportJob.Kind.FOLLOW_PLAY, params_for(project, clip)
    )


def analyse(job, attempt, tmp: Path, reporter, should_cancel, local_copy) -> dict:
    """The job's work: the proposal, as ``job.result``."""
    params = job.params
    reporter.update(1, "analysing", "Finding the play")

    def progress(fraction: float) -> None:
        reporter.update(1 + round(fraction * 97), "analysing", "Finding the play")

    try:
        detector = detectors.load(settings.FOLLOW_DETECTOR_PATH)
    except detectors.DetectorUnavailable as exc:
        raise RenderError(
            f"The detector model cannot be used: {exc}", "detector_unavailable"
        ) from None
    with attempt.heartbeat(), local_copy(params["file"], tmp) as path:
        try:
            proposal = propose.propose(
                path,
                params["aspect"],
                start=params["start"],
                end=params["end"],
                progress=progress,
                should_cancel=should_cancel,
                detector=detector,
            )
        except vision.AnalysisCancelled:
            raise RenderCancelled() from None
        except detectors.DetectorUnavailable as exc:
            raise RenderError(str(exc), "detector_unavailable") from None
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise RenderError(f"The clip could not be analysed: {exc}", "source_corrupt") from exc
    return {"clip_id": params["clip_id"], "proposal": proposal.to_dict()}
