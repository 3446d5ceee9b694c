"""Refuse oversized request bodies before anything reads them.

Django's ASGI handler spools the whole body to disk before a view runs, so the upload
limit has to be enforced in front of it, from the declared Content-Length. The exact
per-file limit is checked while the multipart body is parsed
(projects.uploads.SizeLimitHandler).
"""

import json

from django.conf import settings

# Multipart framing around the file: boundaries, part headers, the CSRF field.
MULTIPART_OVERHEAD = 64 * 1024


def upload_too_large_message() -> str:
    limit_mb = settings.MAX_UPLOAD_BYTES / 1024**2
    return f"The file is larger than the {limit_mb:,.0f} MB upload limit."


def declared_too_large(content_length: int) -> bool:
    """Whether a body of this declared length cannot hold a file within the limit."""
    return content_length > settings.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD


def parse_content_length(value) -> int:
    """The declared length; an unusable one counts as none, as Django itself treats it."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


class BodySizeLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and declared_too_large(self._declared_length(scope)):
            await self._refuse(send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _declared_length(scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                return parse_content_length(value)
        return 0

    @staticmethod
    async def _refuse(send):
        body = json.dumps({"error": upload_too_large_message(), "code": "upload_too_large"})
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
        await send({"type": "http.response.body", "body": body.encode()})
