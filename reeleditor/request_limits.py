"""Refuse oversized request bodies before anything reads them.

Django's ASGI handler spools the whole body to disk before a view runs, so the upload
limit has to be enforced in front of it, from the declared Content-Length. (Bodies
without a length are cut off by projects.uploads.SizeLimitHandler as they stream.)
"""

import json

from django.conf import settings

# Multipart framing around the file: boundaries, part headers, the CSRF field.
MULTIPART_OVERHEAD = 64 * 1024


class BodySizeLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and self._declared_length(scope) > settings.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD
        ):
            await self._refuse(send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _declared_length(scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    @staticmethod
    async def _refuse(send):
        limit_mb = settings.MAX_UPLOAD_BYTES / 1024**2
        body = json.dumps(
            {
                "error": f"The file is larger than the {limit_mb:,.0f} MB upload limit.",
                "code": "upload_too_large",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
