"""Games and their plays across users, read-only, as a staff console.

Games live in each user's own database, so the stock changelist cannot list them (it
would query the staff member's database). As for working videos (projects/admin.py),
this keeps only the admin's index entry, its staff checks and the ``games.view_game``
permission, and replaces the changelist: pick a user (``?user=<id>``), see their games
with their plays. Nothing here writes to a user's database.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path

from projects.admin import NoData, user_database
from syncstore import sync

from .models import Game


@admin.register(Game)
class GameAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        # Only the chooser: the stock pages would look ids up in the wrong database.
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [path("", view(self.changelist_view), name=f"{prefix}_changelist")]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        users = get_user_model().objects.order_by("username")
        chosen, games, warning = None, [], None
        if request.GET.get("user"):
            try:
                chosen = users.get(pk=int(request.GET["user"]))
            except (ValueError, get_user_model().DoesNotExist):
                raise Http404("No such user.") from None
            try:
                with user_database(chosen.pk) as warning:
                    games = self._games()
            except NoData:
                pass
            except sync.SyncUnavailable as exc:
                warning = f"This user's data cannot be loaded right now: {exc}"
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Games",
            "subtitle": chosen.get_username() if chosen else None,
            "users": users,
            "chosen": chosen,
            "games": games,
            "warning": warning,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/games/game/across_users.html", context)

    def _games(self) -> list[dict]:
        """The bound user's games and plays, as plain values (read inside the binding)."""
        return [
            {
                "game": game,
                "status": game.get_status_display(),
                "clip_count": game.clips.count(),
                "plays": list(game.plays.all()),
            }
            for game in Game.objects.all()
        ]
