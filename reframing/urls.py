from django.urls import path

from . import api

app_name = "reframing"

api_urlpatterns = [
    path(
        "projects/<int:project_id>/clips/<int:clip_id>/follow",
        api.follow_clip,
        name="api-follow-clip",
    ),
]
