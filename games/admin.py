"""Games and their plays across users, read-only, as a staff console.

Games live in each user's own database: ``PerUserAdmin`` (syncstore/peruser_admin.py)
replaces the stock changelist with a user chooser (``?user=<id>``) that lists their games
with their plays. Nothing here writes to a user's database.
"""

from django.contrib import admin

from syncstore.peruser_admin import PerUserAdmin

from .models import Game


@admin.register(Game)
class GameAdmin(PerUserAdmin):
    title = "Games"
    template = "admin/games/game/across_users.html"
    rows_name = "games"

    def rows(self, user_id: int) -> list[dict]:
        return [
            {
                "game": game,
                "status": game.get_status_display(),
                "clip_count": game.clips.count(),
                "plays": list(game.plays.all()),
            }
            for game in Game.objects.all()
        ]
