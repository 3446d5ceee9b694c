from django.urls import path

from . import api, views

urlpatterns = [
    path("s/<str:token>/", views.page, name="share-page"),
    path("s/<str:token>/video.mp4", views.video, name="share-video"),
    path("s/<str:token>/poster.jpg", views.poster, name="share-poster"),
]

api_urlpatterns = [
    path(
        "projects/<int:project_id>/final-videos/<int:video_id>/share-links",
        api.video_links,
        name="api-share-links",
    ),
    path("share-links/<int:link_id>", api.link, name="api-share-link"),
]
