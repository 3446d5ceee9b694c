"""The exports JSON API: start, watch, cancel and retry export jobs."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from projects.models import Project
from reeleditor.jsonapi import ApiError, api_view, json_body

from . import jobs
from .models import ExportJob


def _job(request, job_id) -> ExportJob:
    job = get_object_or_404(ExportJob, pk=job_id, user=request.user)
    jobs.mark_if_lost(job)
    return job


def _refused(exc: jobs.ExportRefused) -> ApiError:
    return ApiError(exc.message, exc.code, exc.status)


@api_view("GET", "POST")
def project_exports(request, project_id):
    """GET: the project's recent exports, newest first (the UI finds a running one here).
    POST ``{kind, upscale?}``: start one, or get the one already running (202 either way).
    """
    project = get_object_or_404(Project, pk=project_id)
    if request.method == "GET":
        recent = ExportJob.objects.filter(
            user=request.user, project_id=project.id, kind__in=ExportJob.EXPORT_KINDS
        )[:20]
        for job in recent:
            jobs.mark_if_lost(job)
        return JsonResponse({"exports": [job.to_message() for job in recent]})
    data = json_body(request)
    upscale = data.get("upscale", False)
    if not isinstance(upscale, bool):
        raise ApiError("upscale must be true or false.", "invalid_upscale")
    try:
        job, created = jobs.start_export(request.user, project, data.get("kind"), upscale=upscale)
    except jobs.ExportRefused as exc:
        raise _refused(exc) from None
    return JsonResponse({**job.to_message(), "created": created}, status=202)


@api_view("GET", "DELETE")
def job(request, job_id):
    job = _job(request, job_id)
    if request.method == "DELETE":
        job = jobs.cancel(job)
        return JsonResponse(job.to_message(), status=202)
    return JsonResponse(job.to_message())


@api_view("POST")
def retry(request, job_id):
    try:
        job = jobs.retry(_job(request, job_id))
    except jobs.ExportRefused as exc:
        raise _refused(exc) from None
    return JsonResponse(job.to_message(), status=202)


@api_view("GET")
def options(request):
    """What the export dialog can offer: AI upscaling only with a model file.

    ``?project=<id>``: also the time upscaling would add to that project's framing
    export (``upscale_estimate``; null without a model or clips).
    """
    from .upscale import availability

    data = {"upscale": availability(), "mode": settings.EXPORT_MODE}
    project_id = request.GET.get("project")
    if project_id is not None:
        from .upscale_estimate import estimate

        if not project_id.isdigit():
            raise ApiError("project must be a project id.", "invalid_project")
        project = get_object_or_404(Project, pk=int(project_id))
        data["estimate"] = estimate(project) if data["upscale"]["available"] else None
    return JsonResponse(data)
