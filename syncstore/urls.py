from django.urls import path

from . import views

urlpatterns = [
    path("sync/status", views.status, name="api-sync-status"),
    path("sync/retry", views.retry, name="api-sync-retry"),
]
