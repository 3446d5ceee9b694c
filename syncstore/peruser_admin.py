"""A read-only staff console over models that live in each user's own database.

Those models (projects, games) sit in one SQLite database per user, so the stock
changelist cannot list them: it runs its queries on whichever database is bound, which
in an admin request is the *staff member's own*. ``PerUserAdmin`` keeps only what the
admin gives for free (the entry on the admin index, the staff-only and login checks of
``admin_view``, the model's view permission) and replaces its pages with a user chooser:
with ``?user=<id>`` it binds that user's database explicitly and lists what
``rows(user_id)`` returns. Nothing here writes to a user's database; there are no add,
change or delete pages (they would look the id up in the wrong database).
"""

from contextlib import contextmanager

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path

from . import sync, userdb
from .binding import bound_to_user


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


class PerUserAdmin(admin.ModelAdmin):
    """Subclasses set ``title``, ``template`` and ``rows_name`` (the template's name
    for the list) and define ``rows(user_id)``; ``extra_urls()`` adds pages of their own."""

    title = ""
    template = ""
    rows_name = "rows"

    def rows(self, user_id: int) -> list:
        """The chosen user's rows as plain values, read inside their database's binding."""
        raise NotImplementedError

    def extra_urls(self) -> list:
        return []

    # --- Permissions: a viewer, never an editor -------------------------------------

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def check_view_permission(self, request):
        # admin_view has already sent anonymous and non-staff users to the admin login.
        if not self.has_view_permission(request):
            raise PermissionDenied

    # --- Pages --------------------------------------------------------------------------

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("", view(self.changelist_view), name=f"{prefix}_changelist"),
            *self.extra_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        """Pick a user (``?user=<id>``); list that user's rows."""
        self.check_view_permission(request)
        users = get_user_model().objects.order_by("username")
        chosen, rows, warning = None, [], None
        if request.GET.get("user"):
            try:
                chosen = users.get(pk=int(request.GET["user"]))
            except (ValueError, get_user_model().DoesNotExist):
                raise Http404("No such user.") from None
            try:
                with user_database(chosen.pk) as warning:
                    rows = self.rows(chosen.pk)
            except NoData:
                pass
            except sync.SyncUnavailable as exc:  # a missing copy could not be downloaded
                warning = f"This user's data cannot be loaded right now: {exc}"
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": self.title,
            "subtitle": chosen.get_username() if chosen else None,
            "users": users,
            "chosen": chosen,
            self.rows_name: rows,
            "warning": warning,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.template, context)
