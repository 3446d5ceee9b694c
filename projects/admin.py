"""Working videos across users, as a staff console.

The ``projects`` models live in one SQLite database per user (syncstore), so the stock
changelist cannot list them: it runs its queries on whichever database is bound, which
in an admin request is the *staff member's own*. This ModelAdmin therefore keeps only
what the admin gives for free (the entry on the admin index, the staff-only and login
checks of ``admin_view``, the ``projects.view_workingvideo`` permission) and replaces
its pages:

* the changelist is a user chooser; with ``?user=<id>`` it binds that user's database
  explicitly (``bound_to_user``) and lists their working videos with a playable preview;
* ``<user id>/<video id>/preview/`` serves one working video's file to staff. The
  ordinary ``/media/`` view stays owner-only (another user's file is a 404 there): this
  route is the only way staff reach someone else's media, it needs the view permission,
  and it serves exactly the file of a working video row found in that user's database,
  never an arbitrary name.

Nothing here writes to a user's database; there are no add, change or delete pages
(they would run on the wrong database).
"""

from contextlib import contextmanager

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from syncstore import sync, userdb
from syncstore.binding import bound_to_user

from . import media
from .models import WorkingVideo


class NoData(Exception):
    """The user has never saved anything: there is no database to open."""


@contextmanager
def user_database(user_id: int):
    """Bind ``user_id``'s database for reading, brought up to the committed version.

    Yields a warning (a sentence) when the committed version could not be loaded and
    the local copy is shown instead, else None. Raises NoData for a user with no data
    anywhere, rather than creating an empty database just to look into it.
    """
    if not userdb.database_path(user_id).exists():
        row = sync.registry_row(user_id)
        if row is None or row.version == 0:
            raise NoData
    # Nested inside the staff member's own binding (set by the middleware); the
    # binding ends with the block, so callers copy out plain values inside it.
    with bound_to_user(user_id):
        try:
            sync.ensure_fresh(user_id)
            warning = None
        except sync.SyncUnavailable as exc:
            warning = f"Showing this machine's copy; the latest version did not load: {exc}"
        yield warning


@admin.register(WorkingVideo)
class WorkingVideoAdmin(admin.ModelAdmin):
    # --- Permissions: a viewer, never an editor -------------------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # --- URLs ---------------------------------------------------------------------------

    def get_urls(self):
        # Only our own pages: the stock change/delete/history pages would look the id
        # up in the staff member's database.
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("", view(self.changelist_view), name=f"{prefix}_changelist"),
            path(
                "<int:user_id>/<int:video_id>/preview/",
                view(self.preview_view),
                name=f"{prefix}_preview",
            ),
        ]

    def _check_view_permission(self, request):
        # admin_view has already sent anonymous and non-staff users to the admin login.
        if not self.has_view_permission(request):
            raise PermissionDenied

    # --- Pages --------------------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        """Pick a user (``?user=<id>``); list that user's working videos."""
        self._check_view_permission(request)
        users = get_user_model().objects.order_by("username")
        chosen, videos, warning = None, [], None
        if request.GET.get("user"):
            try:
                chosen = users.get(pk=int(request.GET["user"]))
            except (ValueError, get_user_model().DoesNotExist):
                raise Http404("No such user.") from None
            try:
                with user_database(chosen.pk) as warning:
                    videos = self._videos(chosen.pk)
            except NoData:
                pass
            except sync.SyncUnavailable as exc:  # a missing copy could not be downloaded
                warning = f"This user's data cannot be loaded right now: {exc}"
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Working videos",
            "subtitle": chosen.get_username() if chosen else None,
            "users": users,
            "chosen": chosen,
            "videos": videos,
            "warning": warning,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/projects/workingvideo/across_users.html", context)

    def _videos(self, user_id: int) -> list[dict]:
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
        self._check_view_permission(request)
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
