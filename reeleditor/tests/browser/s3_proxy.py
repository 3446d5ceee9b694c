"""The browser tests' S3 proxy: a TCP proxy in front of the moto endpoint, with an off switch.

The live servers reach their bucket through it, and so does the browser (presigned media
URLs), so a test can make the object store fail for real (connections refused, open ones
cut) and bring it back. It passes bytes through untouched: it knows nothing of HTTP (for
faults per request, see ``syncstore/tests/faults/s3proxy.py``).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

from reeleditor.localcluster.processes import free_port


class S3Proxy:
    """A threaded TCP proxy on 127.0.0.1 in front of an S3 endpoint, with an off switch.

    ``fail()`` closes the listening socket (new connections are refused, as by a store
    that is down) and cuts every open connection; ``recover()`` listens again on the same
    port. Bytes pass through untouched, so the Host header the client signed and the one
    the upstream sees are the proxy's.
    """

    def __init__(self, upstream_url: str):
        match = re.fullmatch(r"http://([^:/]+):(\d+)/?", upstream_url)
        if not match:
            raise ValueError(f"expected http://host:port, got {upstream_url!r}")
        self.upstream = (match[1], int(match[2]))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0  # connections accepted since start (a test can see traffic)
        self._lock = threading.Lock()
        self._want_listening = threading.Event()
        self._is_listening = threading.Event()
        self._is_closed = threading.Event()
        self._stopped = threading.Event()
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def failing(self) -> bool:
        return not self._want_listening.is_set()

    def start(self) -> S3Proxy:
        self._want_listening.set()
        self._thread = threading.Thread(target=self._serve, name="s3-proxy", daemon=True)
        self._thread.start()
        if not self._is_listening.wait(5):
            raise RuntimeError(f"S3 proxy could not listen on {self.url}")
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._want_listening.clear()
        self._close_connections()
        if self._thread:
            self._thread.join(5)

    def fail(self) -> None:
        """Refuse new connections and cut the open ones, until ``recover()``."""
        self._is_closed.clear()
        self._want_listening.clear()
        if not self._is_closed.wait(5):
            raise RuntimeError("S3 proxy did not stop listening")
        self._close_connections()

    def recover(self) -> None:
        """Listen again on the same port."""
        if not self.failing:
            return
        self._is_listening.clear()
        self._want_listening.set()
        if not self._is_listening.wait(5):
            raise RuntimeError(f"S3 proxy could not listen again on {self.url}")

    # The accept loop owns the listening socket: it opens it while the proxy should be
    # up and closes it (and says so) when ``fail()`` asks, so no other thread ever closes
    # a socket another one is blocked on.
    def _serve(self) -> None:
        while not self._stopped.is_set():
            if not self._want_listening.wait(0.05):
                continue
            listener = self._listen()
            self._is_listening.set()
            try:
                while self._want_listening.is_set() and not self._stopped.is_set():
                    try:
                        client, _ = listener.accept()
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    self._open(client)
            finally:
                listener.close()
                self._is_listening.clear()
                self._is_closed.set()

    def _listen(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        listener.listen(64)
        listener.settimeout(0.05)
        return listener

    def _open(self, client: socket.socket) -> None:
        self.accepted += 1
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _hard_close(client)
            return
        upstream.settimeout(None)
        client.settimeout(None)
        pair = _Pair(client, upstream)
        with self._lock:
            self._connections.update((client, upstream))
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(
                target=self._pump, args=(pair, source, target), name="s3-proxy-pump", daemon=True
            ).start()

    def _pump(self, pair: _Pair, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        # This direction is over: pass the end on, and the second pump to get here
        # closes both sockets.
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
        if pair.one_done():
            with self._lock:
                self._connections.difference_update(pair.sockets)
            for sock in pair.sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            # shutdown wakes the pumps blocked in recv; they close the sockets.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Pair:
    """The two sockets of one proxied connection, and how many pumps have finished."""

    def __init__(self, *sockets: socket.socket):
        self.sockets = sockets
        self._done = 0
        self._lock = threading.Lock()

    def one_done(self) -> bool:
        """Count one finished pump; True for the last one."""
        with self._lock:
            self._done += 1
            return self._done == len(self.sockets)


def _hard_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
