"""Working videos across users, as a staff console.

Working videos live in each user's own database: ``PerUserAdmin``
(syncstore/peruser_admin.py) replaces the stock pages with a user chooser that lists a
user's working videos with a playable preview, and this adds one page:

* ``<user id>/<video id>/preview/`` serves one working video's file to staff. The
  ordinary ``/media/`` view stays owner-only (another user's file is a 404 there): this
  route is the only way staff reach someone else's media, it needs the view permission,
  and it serves exactly the file of a working video row found in that user's database,
  never an arbitrary name.

Nothing here writes to a user's database.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from syncstore import sync
from syncstore.peruser_admin import NoData, PerUserAdmin, user_database

from . import media
from .models import WorkingVideo


@admin.register(WorkingVideo)
class WorkingVideoAdmin(PerUserAdmin):
    title = "Working videos"
    template = "admin/projects/workingvideo/across_users.html"
    rows_name = "videos"

    def extra_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path(
                "<int:user_id>/<int:video_id>/preview/",
                view(self.preview_view),
                name=f"{prefix}_preview",
            ),
        ]

    def rows(self, user_id: int) -> list[dict]:
        """The bound user's working videos, newest first, as plain values."""
        rows = WorkingVideo.objects.select_related("project").order_by("-created_at", "-id")
        preview = f"{self.admin_site.name}:projects_workingvideo_preview"
        return [
            {
                "id": video.id,
                "project": video.project.name,
                "project_id": video.project_id,
                "width": video.width,
                "height": video.height,
                "duration": video.duration,
                "fps": video.fps,
                "size_bytes": video.size_bytes,
                "created_at": video.created_at,
                "superseded": video.superseded,
                # The one the project's overlay mode edits now.
                "current": video.project.working_video_id == video.id,
                "preview_url": reverse(preview, args=[user_id, video.id]),
            }
            for video in rows
        ]

    def preview_view(self, request, user_id, video_id):
        """One working video's file, for staff (HTTP Range works, for seeking)."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        self.check_view_permission(request)
        get_object_or_404(get_user_model(), pk=user_id)
        try:
            with user_database(user_id):
                rows = WorkingVideo.objects.filter(pk=video_id)
                name = rows.values_list("file", flat=True).first()
        except (NoData, sync.SyncUnavailable):
            name = None
        if name is None:
            raise Http404("No such working video.")
        # The media module's checks still apply: the name must be well formed and under
        # this user's prefix.
        return media.serve(request, name, allowed_user_ids={user_id})
