from django.urls import path

from . import history_views, views

urlpatterns = [
    path("sync/status", views.status, name="api-sync-status"),
    path("sync/retry", views.retry, name="api-sync-retry"),
]

# The History pages (mounted at ``history/`` in the "history" namespace).
history_urlpatterns = [
    path("", history_views.index, name="index"),
    path("<int:version>/", history_views.version, name="version"),
    path("<int:version>/restore", history_views.restore, name="restore"),
]
