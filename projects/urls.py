from django.urls import path

from . import api, views

app_name = "projects"

urlpatterns = [
    path("", views.index, name="index"),
    path("projects/<int:project_id>/", views.detail, name="detail"),
    path("projects/<int:project_id>/overlay/", views.overlay, name="overlay"),
    path("projects/<int:project_id>/gallery/", views.gallery, name="gallery"),
    path(
        "projects/<int:project_id>/title-card.png",
        views.title_card_preview,
        name="title-card-preview",
    ),
]

api_urlpatterns = [
    path("projects", api.projects, name="api-projects"),
    path("projects/<int:project_id>", api.project, name="api-project"),
    path("projects/<int:project_id>/open", api.open_project, name="api-project-open"),
    path("projects/<int:project_id>/clips", api.upload_clip, name="api-clips"),
    path("projects/<int:project_id>/clips/<int:clip_id>", api.clip, name="api-clip"),
    path(
        "projects/<int:project_id>/clips/from-plays",
        api.clips_from_plays,
        name="api-clips-from-plays",
    ),
    path("projects/<int:project_id>/highlights", api.highlights, name="api-highlights"),
    path("projects/<int:project_id>/working-video", api.working_video, name="api-working-video"),
    path("projects/<int:project_id>/final-videos", api.final_videos, name="api-final-videos"),
]
