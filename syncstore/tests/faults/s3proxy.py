"""An HTTP reverse proxy in front of an S3 endpoint (moto's server) that can cut requests.

The app under test is pointed at the proxy (``S3_ENDPOINT_URL=proxy.url``); boto3 uses
path-style addressing there, so every request path is ``/<bucket>/<key>`` (or
``/<bucket>?list-type=2&prefix=...`` for a listing). The proxy understands HTTP: it
reads each request, decides from its object key whether to let it through, and forwards
it to the upstream with its headers and body streamed (``Content-Length`` or
``Transfer-Encoding: chunked``). It answers with ``Connection: close``, so every request
is one connection and a cut never leaves a half-used keep-alive connection behind.

Faults, switched at run time from the test process (thread-safe):

- ``cut_all()``: every request fails.
- ``cut("snapshots/")``: requests whose object key starts with the prefix fail, and so do
  listings whose ``prefix=`` starts with it; ``media/...`` still passes.
- ``fail_next(n, "snapshots/")``: only the next ``n`` matching requests fail.
- ``heal()``: everything passes again (and requests held by ``mode="hang"`` are dropped).

How a request fails is its ``mode`` (the proxy's default, or per call):

- ``"drop"``: the connection is closed without an answer, as by a store that went down
  (the client sees "connection closed/reset without response").
- ``"503"``: an S3-style ``503 ServiceUnavailable`` XML error.
- ``"hang"``: no answer at all until the client gives up (its read timeout), ``heal()``,
  or ``hang_seconds``; then the connection is closed. A black-holed store.

``sever=True`` on ``cut``/``cut_all`` also breaks matching requests already in flight.

Every request is recorded (``requests()``), and ``counts(prefix)`` says how many were
seen, cut and forwarded. botocore retries failed requests (the app's client: 2 retries),
so one store operation can be several requests here: ``fail_next(1, ...)`` cuts the first
try and lets the retry through.

Matching is on the raw object key in the bucket, after the bucket name: with
``SNAPSHOT_PREFIX`` set, the app's keys start with that prefix. Bucket-level requests
other than listings (create bucket, a listing with no or a shorter prefix) match only
``cut_all()`` and ``prefix=None``.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

logger = logging.getLogger(__name__)

MODES = ("drop", "503", "hang")
# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business on each side.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_COPY_CHUNK = 64 * 1024
_UNAVAILABLE_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>ServiceUnavailable</Code>"
    b"<Message>Service unavailable (fault injected by the test proxy).</Message>"
    b"<RequestId>s3-fault-proxy</RequestId></Error>"
)


@dataclass
class ProxiedRequest:
    """One request the proxy saw, and what it did with it."""

    method: str
    path: str  # as sent, query included
    bucket: str
    key: str  # object key after the bucket ("" for bucket-level requests)
    list_prefix: str | None  # ``prefix=`` of a bucket-level request (a listing)
    outcome: str = "pending"  # forwarded | drop | 503 | hang | severed | upstream-error
    status: int | None = None  # the upstream's status, when forwarded
    at: float = 0.0  # time.monotonic() when it arrived

    @property
    def cut(self) -> bool:
        return self.outcome in ("drop", "503", "hang", "severed")

    def matches(self, prefix: str | None) -> bool:
        """True for ``prefix=None``, a key under ``prefix``, or a listing under it."""
        if prefix is None:
            return True
        if self.key:
            return self.key.startswith(prefix)
        return self.list_prefix is not None and self.list_prefix.startswith(prefix)


class Counts(NamedTuple):
    """Requests under a prefix: all seen, those cut, those forwarded to the upstream."""

    seen: int
    cut: int
    forwarded: int


@dataclass
class _Rule:
    prefix: str | None  # None: every request
    mode: str
    remaining: int | None  # None: until heal()


def _parse_target(raw_path: str) -> tuple[str, str, str | None]:
    parts = urllib.parse.urlsplit(raw_path)
    bucket, _, key = parts.path.lstrip("/").partition("/")
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    list_prefix = query["prefix"][0] if "prefix" in query else None
    return urllib.parse.unquote(bucket), urllib.parse.unquote(key), list_prefix


class S3FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 (its own port) in front of ``upstream_url``."""

    def __init__(
        self,
        upstream_url: str,
        *,
        mode: str = "drop",
        hang_seconds: float = 30.0,
        upstream_timeout: float = 30.0,
    ):
        match = re.fullmatch(r"http://([^:/]+):(\d+)/?", upstream_url)
        if not match:
            raise ValueError(f"expected http://host:port, got {upstream_url!r}")
        self.upstream = (match[1], int(match[2]))
        self.mode = self._check_mode(mode)
        self.hang_seconds = hang_seconds
        self.upstream_timeout = upstream_timeout
        self._cond = threading.Condition()  # guards everything below; wakes waiters
        self._rules: list[_Rule] = []
        self._log: list[ProxiedRequest] = []
        self._active: dict[int, tuple[ProxiedRequest, list[socket.socket]]] = {}
        self._heal_generation = 0
        self._stopped = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.upstream_url = f"http://{self.upstream[0]}:{self.upstream[1]}"
        self.bucket: str | None = None  # the bucket a fixture made for it, if any
        self._clients: dict[tuple, object] = {}

    # --- Life cycle ------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3FaultProxy:
        # Port 0: the kernel picks a free port, no race with other tests.
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="s3-fault-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._sever(None)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> S3FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- Faults ----------------------------------------------------------------------

    def cut_all(self, mode: str | None = None, *, sever: bool = False) -> None:
        """Fail every request until ``heal()``."""
        self._add_rule(None, mode, None, sever)

    def cut(self, prefix: str, mode: str | None = None, *, sever: bool = False) -> None:
        """Fail requests for keys (or listings) under ``prefix`` until ``heal()``."""
        if not prefix:
            raise ValueError("cut() needs a prefix; use cut_all() for everything")
        self._add_rule(prefix, mode, None, sever)

    def fail_next(self, n: int, prefix: str | None = None, mode: str | None = None) -> None:
        """Fail only the next ``n`` requests under ``prefix`` (every request for None)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        self._add_rule(prefix, mode, n, False)

    def heal(self) -> None:
        """Let everything through again; requests held by ``"hang"`` are dropped now."""
        with self._cond:
            self._rules.clear()
            self._heal_generation += 1
            self._cond.notify_all()

    @property
    def faulty(self) -> bool:
        """True while any cut or ``fail_next`` is in force."""
        with self._cond:
            return bool(self._rules)

    # --- Clients ---------------------------------------------------------------------

    def client(self, *, direct: bool = False, attempts: int = 1, read_timeout: float = 5.0):
        """A boto3 S3 client configured like the app's (path-style, no extra checksums).

        Through the proxy by default; ``direct=True`` talks to the upstream, never cut.
        ``attempts`` is botocore's total number of tries (1: no retries).
        """
        import boto3
        import botocore.config

        cache_key = (direct, attempts, read_timeout)
        with self._cond:
            cached = self._clients.get(cache_key)
        if cached is not None:
            return cached
        config = botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": attempts, "mode": "standard"},
            connect_timeout=1,
            read_timeout=read_timeout,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.upstream_url if direct else self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )
        with self._cond:  # clients are thread-safe once built; one per configuration
            return self._clients.setdefault(cache_key, client)

    def list_keys(self, prefix: str = "", bucket: str | None = None) -> list[str]:
        """Keys in the bucket under ``prefix``, asked of the upstream (never cut)."""
        bucket = bucket or self.bucket
        if not bucket:
            raise ValueError("no bucket: pass one")
        pages = self.client(direct=True).get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in pages.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", ())
        )

    # --- What it saw -----------------------------------------------------------------

    def requests(self, prefix: str | None = None) -> list[ProxiedRequest]:
        """Copies of the recorded requests under ``prefix`` (all for None), oldest first."""
        with self._cond:
            return [ProxiedRequest(**vars(item)) for item in self._log if item.matches(prefix)]

    def counts(self, prefix: str | None = None) -> Counts:
        with self._cond:
            items = [item for item in self._log if item.matches(prefix)]
        return Counts(
            seen=len(items),
            cut=sum(item.cut for item in items),
            forwarded=sum(item.outcome == "forwarded" for item in items),
        )

    def reset_counts(self) -> None:
        with self._cond:
            self._log.clear()

    def wait_for(
        self, prefix: str | None = None, *, seen: int = 1, cut: bool = False, timeout=10.0
    ) -> list[ProxiedRequest]:
        """Wait until ``seen`` requests under ``prefix`` (cut ones only with ``cut``) arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    ProxiedRequest(**vars(item))
                    for item in self._log
                    if item.matches(prefix) and (item.cut or not cut)
                ]
                if len(found) >= seen:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{seen} {'cut ' if cut else ''}request(s) under {prefix!r} not seen "
                        f"in {timeout}s: {found}"
                    )
                self._cond.wait(left)

    # --- Inside ----------------------------------------------------------------------

    @staticmethod
    def _check_mode(mode: str) -> str:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        return mode

    def _add_rule(self, prefix, mode, remaining, sever) -> None:
        rule = _Rule(prefix, self._check_mode(mode or self.mode), remaining)
        with self._cond:
            self._rules.append(rule)
        if sever:
            self._sever(prefix)

    def _decide(self, method: str, raw_path: str) -> tuple[ProxiedRequest, str | None]:
        """Record a new request; returns it and the fault mode to apply (None: forward)."""
        bucket, key, list_prefix = _parse_target(raw_path)
        record = ProxiedRequest(method, raw_path, bucket, key, list_prefix, at=time.monotonic())
        mode = None
        with self._cond:
            for rule in self._rules:
                if record.matches(rule.prefix):
                    mode = rule.mode
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    break
            record.outcome = mode or "pending"
            self._log.append(record)
            self._cond.notify_all()
        return record, mode

    def _finish(self, record: ProxiedRequest, outcome: str, status: int | None = None) -> None:
        with self._cond:
            if record.outcome != "severed":
                record.outcome = outcome
            record.status = status
            self._cond.notify_all()

    def _hang(self) -> None:
        deadline = time.monotonic() + self.hang_seconds
        with self._cond:
            generation = self._heal_generation
            while not self._stopped and self._heal_generation == generation:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _track(self, handler_id: int, record: ProxiedRequest, sock: socket.socket) -> None:
        with self._cond:
            self._active.setdefault(handler_id, (record, []))[1].append(sock)

    def _untrack(self, handler_id: int) -> None:
        with self._cond:
            self._active.pop(handler_id, None)

    def _sever(self, prefix: str | None) -> None:
        with self._cond:
            victims = [
                (record, list(socks))
                for record, socks in self._active.values()
                if record.matches(prefix)
            ]
            for record, _ in victims:
                record.outcome = "severed"
            self._cond.notify_all()
        for _, socks in victims:
            for sock in socks:
                # shutdown wakes the handler blocked on it; the handler closes it.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, handler, proxy: S3FaultProxy):
        self.proxy = proxy
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # Cut connections are what this server is for: no tracebacks on stderr.
        logger.debug("s3 fault proxy: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # 100-continue, chunked request bodies
    server_version = "s3-fault-proxy"
    server: _Server

    def handle_one_request(self):
        self._record = None
        self._mode = None
        super().handle_one_request()

    def log_message(self, format, *args):
        pass

    def _decide(self):
        if self._record is None:
            self._record, self._mode = self.server.proxy._decide(self.command, self.path)

    def handle_expect_100(self):
        # Decide before asking for the body: a cut request never gets "100 Continue".
        self._decide()
        if self._mode is None:
            return super().handle_expect_100()
        return True

    def _serve(self):
        self.close_connection = True
        self._decide()
        proxy = self.server.proxy
        if self._mode is None:
            self._forward()
            return
        if self._mode == "503":
            self._unavailable()
            return
        if self._mode == "hang":
            proxy._hang()
        self._drop()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _serve

    # --- Faults ----------------------------------------------------------------------

    def _drop(self):
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _unavailable(self):
        # A body the client sends anyway is read first: closing on unread data makes
        # the kernel answer with a reset, which could destroy the 503 before it is read.
        # A client that asked "Expect: 100-continue" sends nothing until told to.
        if not self.headers.get("Expect"):
            with contextlib.suppress(OSError, ValueError):
                self._copy_body(None)
        with contextlib.suppress(OSError):
            self.send_response_only(503, "Service Unavailable")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(_UNAVAILABLE_BODY)))
            self.send_header("Retry-After", "1")
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(_UNAVAILABLE_BODY)

    # --- Forwarding ------------------------------------------------------------------

    def _forward(self):
        proxy = self.server.proxy
        record = self._record
        handler_id = id(self)
        proxy._track(handler_id, record, self.connection)
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=proxy.upstream_timeout)
        answered = False
        try:
            try:
                upstream.connect()
                proxy._track(handler_id, record, upstream.sock)
                self._send_request(upstream)
                response = upstream.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                proxy._finish(record, "upstream-error")
                logger.debug("s3 fault proxy: upstream failed for %s: %s", record.path, exc)
                if record.outcome != "severed":
                    self._bad_gateway(exc)
                return
            proxy._finish(record, "forwarded", response.status)
            answered = True
            self._send_response(response)
        except OSError:
            if answered:
                logger.debug("s3 fault proxy: client went away during %s", record.path)
        finally:
            upstream.close()
            proxy._untrack(handler_id)
            if record.outcome == "severed":
                self._drop()

    def _send_request(self, upstream: http.client.HTTPConnection) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or lowered == "expect":
                continue  # the proxy answered the 100-continue itself
            if lowered == "content-length" and chunked:
                continue
            upstream.putheader(name, value)
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        upstream.putheader("Connection", "close")
        upstream.endheaders()
        self._copy_body(upstream.sock)

    def _copy_body(self, target: socket.socket | None) -> None:
        """Stream the request body to ``target`` as framed (None: read and discard)."""
        send = target.sendall if target is not None else (lambda data: None)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Pass the chunk framing through as it is (extensions, trailers), reading
            # just enough of it to know where the body ends.
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("request body ended inside a chunk header")
                send(line)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, up to the empty line
                        trailer = self.rfile.readline(65537)
                        if not trailer:
                            raise ConnectionError("request body ended inside the trailers")
                        send(trailer)
                        if trailer in (b"\r\n", b"\n"):
                            return
                self._copy_exact(size, send)
                send(self.rfile.readline(65537))  # the CRLF after the chunk data
            return
        length = int(self.headers.get("Content-Length") or 0)
        self._copy_exact(length, send)

    def _copy_exact(self, length: int, send) -> None:
        while length > 0:
            data = self.rfile.read(min(length, _COPY_CHUNK))
            if not data:
                raise ConnectionError("request body ended early")
            send(data)
            length -= len(data)

    def _send_response(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        # Without Content-Length (an upstream chunked answer, decoded by http.client),
        # the body ends when the connection closes.
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD" or response.status in (204, 304):
            return
        while True:
            data = response.read1(_COPY_CHUNK)
            if not data:
                break
            self.wfile.write(data)

    def _bad_gateway(self, exc: BaseException) -> None:
        body = f"s3 fault proxy: upstream failed: {exc}".encode()
        with contextlib.suppress(OSError):
            self.send_response_only(502, "Bad Gateway")
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
