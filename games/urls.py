from django.urls import path

from . import api, views

app_name = "games"

urlpatterns = [
    path("games/", views.index, name="index"),
    path("games/<int:game_id>/", views.detail, name="detail"),
]

api_urlpatterns = [
    path("games", api.games, name="api-games"),
    path("games/uploads", api.uploads, name="api-game-uploads"),
    path("games/uploads/<str:upload_id>", api.upload, name="api-game-upload"),
    path(
        "games/uploads/<str:upload_id>/chunks/<int:index>",
        api.upload_chunk,
        name="api-game-upload-chunk",
    ),
    path(
        "games/uploads/<str:upload_id>/complete",
        api.complete_upload,
        name="api-game-upload-complete",
    ),
    path("games/<int:game_id>", api.game, name="api-game"),
    path("games/<int:game_id>/plays", api.game_plays, name="api-game-plays"),
    path("games/<int:game_id>/plays/<int:play_id>", api.game_play, name="api-game-play"),
    path("plays", api.all_plays, name="api-plays"),
]
