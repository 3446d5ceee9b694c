"""WebSocket routes of the exports app."""

from django.urls import re_path

from .consumers import ExportProgressConsumer

websocket_urlpatterns = [
    re_path(r"^ws/exports/(?P<job_id>[0-9a-f-]{36})/$", ExportProgressConsumer.as_asgi()),
]
