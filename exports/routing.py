"""WebSocket routes of the exports app (export progress arrives with the exports issue)."""

websocket_urlpatterns = []
