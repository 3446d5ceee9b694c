"""ASGI entry point: Django for HTTP, Channels for WebSockets (export progress)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reeleditor.settings")
# Django must be set up before anything imports models (consumers, auth middleware).
django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from exports.routing import websocket_urlpatterns  # noqa: E402

from .request_limits import BodySizeLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimit(django_http),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
