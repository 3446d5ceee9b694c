"""Server-rendered pages of the games app: the games list (with the upload) and a game's
annotate page. The pages' scripts work through the JSON API (games/api.py)."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from projects.models import Project

from .models import Game


@ensure_csrf_cookie
@require_GET
def index(request):
    return render(
        request,
        "games/index.html",
        {
            "games": Game.objects.all(),
            "projects": Project.objects.all(),
            "aspect_ratios": Project.AspectRatio.choices,
        },
    )


@ensure_csrf_cookie
@require_GET
def detail(request, game_id):
    """Annotate mode: scrub the game with its filmstrip, mark plays."""
    game = get_object_or_404(Game, pk=game_id)
    data = game.to_dict()
    data["plays"] = [play.to_dict() for play in game.plays.all()]
    return render(request, "games/detail.html", {"game": game, "data": data})
