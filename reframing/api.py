"""The follow-the-play API: start the analysis of a clip. The job is watched, cancelled
and read like an export (/api/exports/<id>, /ws/exports/<id>/); its message carries the
proposal once complete."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from exports import jobs
from projects.models import Clip, Project
from reeleditor.jsonapi import ApiError, api_view

from . import job


@api_view("POST")
def follow_clip(request, project_id, clip_id):
    project = get_object_or_404(Project, pk=project_id)
    clip = get_object_or_404(Clip, pk=clip_id, project=project)
    try:
        started, created = job.start(request.user, project, clip)
    except jobs.ExportRefused as exc:
        raise ApiError(exc.message, exc.code, exc.status) from None
    return JsonResponse({**started.to_message(), "created": created}, status=202)
