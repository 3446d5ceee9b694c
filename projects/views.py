"""Server-rendered pages of the projects app, and the owner-checked media view."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_safe

from syncstore.binding import current_user_id

from . import media
from .api import project_detail_dict
from .models import Project


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
            "projects": Project.objects.with_status(),
            "aspect_ratios": Project.AspectRatio.choices,
        },
    )


def _page(request, project_id, template):
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
        },
    )


@require_GET
def detail(request, project_id):
    """Framing mode: the clips, the crop editor, the framing export."""
    return _page(request, project_id, "projects/detail.html")


@require_GET
def overlay(request, project_id):
    """Overlay mode: highlight regions on the working video, the final export."""
    return _page(request, project_id, "projects/overlay.html")


@require_GET
def gallery(request, project_id):
    """The project's final videos, to watch and download."""
    return _page(request, project_id, "projects/gallery.html")


@require_safe
def media_file(request, name):
    # Only the owner's own prefix is reachable; the media module also rejects names
    # that are not exactly the ones it generates (no "..", no odd characters).
    return media.serve(request, name, allowed_user_ids={current_user_id()})
