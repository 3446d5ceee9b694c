"""Test support: drive the real ASGI application (HTTP) the way daphne does.

Used by tests that need true concurrency on one event loop, which Django's test
clients cannot give (they run one request at a time).
"""

import json
import secrets
from dataclasses import dataclass

from asgiref.testing import ApplicationCommunicator
from django.test import Client


@dataclass
class AsgiResponse:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class AsgiSession:
    """A signed-in browser: session cookie, CSRF cookie and header, for raw ASGI calls."""

    def __init__(self, user):
        client = Client()
        client.force_login(user)
        self.session_id = client.cookies["sessionid"].value
        self.csrf_token = secrets.token_hex(16)  # 32 characters, like Django's own secret

    def headers(self, extra=()):
        cookie = f"sessionid={self.session_id}; csrftoken={self.csrf_token}"
        return [
            (b"host", b"testserver"),
            (b"cookie", cookie.encode()),
            (b"x-csrftoken", self.csrf_token.encode()),
            *extra,
        ]

    async def request(self, application, method, path, data=None, timeout=30):
        body = json.dumps(data).encode() if data is not None else b""
        extra = [(b"content-type", b"application/json")] if data is not None else []
        extra.append((b"content-length", str(len(body)).encode()))
        return await asgi_request(
            application, method, path, headers=self.headers(extra), body=body, timeout=timeout
        )


async def asgi_request(application, method, path, *, headers=(), body=b"", timeout=30):
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout)
    chunks = []
    while True:
        message = await communicator.receive_output(timeout)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(timeout)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return AsgiResponse(start["status"], headers, b"".join(chunks))
