"""Server-rendered pages of the projects app, and the owner-checked media view."""

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_safe

from exports import titlecard
from syncstore.binding import current_user_id

from . import media, presets
from .api import project_detail_dict
from .models import Clip, Project

PREVIEW_LONG_SIDE = 480  # px of the title card's preview image

# Every page's script calls the API with the csrftoken cookie in X-CSRFToken; the
# decorator makes sure the cookie is there even on a page without a form.


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def index(request):
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:200]
        aspect = request.POST.get("aspect_ratio")
        if not name or aspect not in Project.AspectRatio.values:
            messages.error(request, "Give the project a name and pick an aspect ratio.")
        else:
            project = Project.objects.create(name=name, aspect_ratio=aspect)
            return redirect("projects:detail", project_id=project.id)
    return render(
        request,
        "projects/index.html",
        {
            "projects": [_card(p) for p in _projects_with_thumbnails()],
            "aspect_ratios": Project.AspectRatio.choices,
        },
    )


def _projects_with_thumbnails():
    first_clips = Prefetch("clips", queryset=Clip.objects.order_by("position", "id"))
    projects = Project.objects.with_status().select_related("working_video")
    return projects.prefetch_related(first_clips)


def _card(project) -> dict:
    """What a project card shows; the thumbnail is a frame of the working video, else of
    the first clip (a <video preload=metadata>, no server-side thumbnails needed)."""
    if project.has_final_video:
        status = ("done", "done")
    elif project.working_video_id:
        status = ("overlay", "in overlay")
    else:
        status = ("framing", "in framing")
    clips = list(project.clips.all())
    if project.working_video is not None:
        thumbnail = project.working_video.file
    else:
        thumbnail = clips[0].file if clips else None
    return {"project": project, "status": status, "thumbnail": thumbnail}


def _page(request, project_id, template, **extra):
    """A project page: the server renders the frame, the page's script gets the data
    (the same shape as GET /api/projects/<id>) through json_script."""
    project = get_object_or_404(Project.objects.with_status(), pk=project_id)
    return render(
        request,
        template,
        {
            "project": project,
            "clips": project.clips.all(),
            "final_videos": project.final_videos.all(),
            "data": project_detail_dict(project),
            **extra,
        },
    )


@ensure_csrf_cookie
@require_GET
def detail(request, project_id):
    """Framing mode: the clips, the crop editor, the framing export."""
    return _page(request, project_id, "projects/detail.html")


@ensure_csrf_cookie
@require_GET
def overlay(request, project_id):
    """Overlay mode: highlight regions on the working video, the final export."""
    return _page(request, project_id, "projects/overlay.html", title_card_seconds=titlecard.SECONDS)


@ensure_csrf_cookie
@require_GET
def gallery(request, project_id):
    """The project's final videos, to watch and download."""
    return _page(request, project_id, "projects/gallery.html")


@require_safe
def title_card_preview(request, project_id):
    """The saved title card as a PNG, in the shape of the final video, small: what the
    export will put first (the same drawing, exports/titlecard.py)."""
    project = get_object_or_404(Project.objects.select_related("working_video"), pk=project_id)
    video = project.working_video
    width, height = (video.width, video.height) if video else project.output_size
    factor = PREVIEW_LONG_SIDE / max(width, height)
    size = (max(2, round(width * factor)), max(2, round(height * factor)))
    response = HttpResponse(titlecard.png(presets.title_card_of(project), *size), "image/png")
    response["Cache-Control"] = "private, no-cache"
    return response


@require_safe
def media_file(request, name):
    # Only the owner's own prefix is reachable; the media module also rejects names
    # that are not exactly the ones it generates (no "..", no odd characters).
    return media.serve(request, name, allowed_user_ids={current_user_id()})
