"""Browser test fixtures: a live daphne server, an S3 proxy that can fail, Playwright.

pytest-django's ``live_server`` is a WSGI server (no WebSockets, and export progress
arrives over a WebSocket), so the pages are served by a real ``daphne`` process running
``reeleditor.asgi:application`` with its own environment, exactly as in production:

- ``server``: ``EXPORT_MODE=mock`` (exports render a small two-second video quickly,
  through the same queue, upload, finalize and sync path); ``real_server``: the real
  render, started only by the tests that ask for it.
- Each server has its own data folder, central SQLite database (migrated first), and
  bucket on the session's moto S3 endpoint (``moto_endpoint``), reached through an
  ``S3Proxy``: a small TCP proxy that a test can make fail for real (connections refused,
  open ones cut) and bring back. Snapshots and media both live in that bucket, so the
  browser follows presigned media URLs to the proxy too.
- The browser is Debian's Chromium (``/usr/bin/chromium``, installed by
  ``scripts/test-services.sh``) driven by Playwright; Playwright cannot download its own
  browsers here.

A failing test gets a screenshot in ``test-artifacts/failures/<test>.png`` and, in its
report, the tail of each live server's log and the browser console. ``screenshot(page,
name)`` saves ``test-artifacts/screenshots/<name>.png`` for people to look at.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 720}
DEFAULT_TIMEOUT_MS = 15_000
SERVER_START_TIMEOUT = 60.0
MANAGE_TIMEOUT = 120.0
BROWSER_FIXTURES = {"page", "page_for", "browser", "server", "real_server", "s3_proxy"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The S3 proxy ----------------------------------------------------------------------


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
        self.port = _free_port()
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


# --- The live server -------------------------------------------------------------------


def _answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


class LiveServer:
    """A daphne process serving the app, with its own data folder, database and bucket."""

    def __init__(self, name: str, workdir: Path, *, export_mode: str, proxy: S3Proxy, bucket):
        self.name = name
        self.workdir = workdir
        self.proxy = proxy
        self.bucket = bucket
        self.export_mode = export_mode
        self.data_dir = workdir / "data"
        self.log_path = workdir / "daphne.log"
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.env = self._environment()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            # The developer's shell must not configure the server under test.
            if not name.startswith(
                ("AWS_", "S3_", "SNAPSHOT_", "EXPORT_", "DJANGO_", "SYNC_", "LEASE_", "UPSCALE_")
            )
            and name not in ("DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS")
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
                "PYTHONUNBUFFERED": "1",
                "REELEDITOR_DATA_DIR": str(self.data_dir),
                "DATABASE_URL": f"sqlite:///{self.workdir / 'central.sqlite3'}",
                "EXPORT_MODE": self.export_mode,
                "EXPORT_PRESET": "ultrafast",
                "DJANGO_DEBUG": "true",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SYNC_RETRY_INTERVAL": "0",
                "S3_BUCKET": self.bucket,
                "S3_ENDPOINT_URL": self.proxy.url,
                "S3_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "SNAPSHOT_CONNECT_TIMEOUT": "1",
                "SNAPSHOT_READ_TIMEOUT": "2",
            }
        )
        return env

    def manage(self, *args: str, extra_env=None, check=True) -> subprocess.CompletedProcess:
        """Run ``manage.py`` with this server's environment (its database, its bucket)."""
        env = {**self.env, **(extra_env or {})}
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=MANAGE_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def create_user(self, username: str, password: str, staff: bool = False) -> int:
        """Create a user in this server's central database; returns its id."""
        code = (
            "import os\n"
            "from django.contrib.auth import get_user_model\n"
            "user = get_user_model().objects.create_user(\n"
            "    os.environ['BT_USERNAME'], password=os.environ['BT_PASSWORD'])\n"
            "user.is_staff = user.is_superuser = os.environ['BT_STAFF'] == '1'\n"
            "user.save()\n"
            "print('user-id', user.pk)\n"
        )
        result = self.manage(
            "shell",
            "-c",
            code,
            extra_env={
                "BT_USERNAME": username,
                "BT_PASSWORD": password,
                "BT_STAFF": "1" if staff else "0",
            },
        )
        match = re.search(r"user-id (\d+)", result.stdout)
        if not match:
            raise RuntimeError(f"no user id in: {result.stdout!r} {result.stderr[-2000:]!r}")
        return int(match[1])

    def start(self) -> LiveServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput")
        for _attempt in range(3):
            self.port = _free_port()
            with open(self.log_path, "ab") as log:
                log.write(f"--- {self.name}: daphne on port {self.port}\n".encode())
                log.flush()
                # Output goes to a file: an unread pipe fills up and blocks the server.
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "daphne",
                        "-b",
                        "127.0.0.1",
                        "-p",
                        str(self.port),
                        "reeleditor.asgi:application",
                    ],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_until_up():
                return self
            self.stop()
        raise RuntimeError(f"daphne ({self.name}) did not start:\n{self.log_tail()}")

    def _wait_until_up(self) -> bool:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # died, most likely the port was taken meanwhile
            if _answers_http(self.url + "/accounts/login/"):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"


_started_servers: list[LiveServer] = []


def _start_server(name, tmp_path_factory, moto_endpoint, proxy, export_mode):
    import boto3

    bucket = f"browser-{name}-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    server = LiveServer(
        name,
        tmp_path_factory.mktemp(f"live-{name}"),
        export_mode=export_mode,
        proxy=proxy,
        bucket=bucket,
    )
    _started_servers.append(server)
    return server.start()


# --- Fixtures: servers -----------------------------------------------------------------


@pytest.fixture(scope="session")
def _s3_proxy_session(moto_endpoint):
    proxy = S3Proxy(moto_endpoint).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def s3_proxy(_s3_proxy_session):
    """The ``server``'s object store, behind a proxy: ``fail()`` and ``recover()``.

    It is back up after every test, whatever the test did.
    """
    yield _s3_proxy_session
    _s3_proxy_session.recover()


@pytest.fixture(scope="session")
def server(tmp_path_factory, moto_endpoint, _s3_proxy_session):
    """The live app in ``EXPORT_MODE=mock`` (``.url``, ``.manage()``, ``.create_user()``)."""
    live = _start_server("mock", tmp_path_factory, moto_endpoint, _s3_proxy_session, "mock")
    yield live
    live.stop()


@pytest.fixture(scope="session")
def real_server(tmp_path_factory, moto_endpoint):
    """The live app with the real export pipeline (its own proxy, bucket and database)."""
    proxy = S3Proxy(moto_endpoint).start()
    live = _start_server("real", tmp_path_factory, moto_endpoint, proxy, "real")
    yield live
    live.stop()
    proxy.stop()


@pytest.fixture
def make_user():
    """``make_user(server, username, password, staff=False)`` -> the new user's id."""

    def make(live: LiveServer, username: str, password: str, staff: bool = False) -> int:
        return live.create_user(username, password, staff=staff)

    return make


# --- Fixtures: the browser -------------------------------------------------------------


@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM_PATH).exists():
        pytest.fail(
            f"{CHROMIUM_PATH} is missing: run scripts/test-services.sh (installs Debian's "
            "chromium), or set CHROMIUM_PATH"
        )
    manager = sync_playwright().start()
    yield manager
    manager.stop()


@pytest.fixture(scope="session")
def browser(_playwright):
    """Debian's Chromium, headless, shared by the session (each test gets a context)."""
    instance = _playwright.chromium.launch(
        executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS
    )
    yield instance
    instance.close()


@pytest.fixture
def page_for(browser, request):
    """``page_for(live_server)``: a new page in a new context whose base URL is that server.

    Viewport 1280x720, downloads accepted. On failure: a screenshot in
    ``test-artifacts/failures/<test>.png``, the console in the report.
    """
    opened = []
    console: list[str] = []
    request.node._browser_console = console

    def open_page(live: LiveServer):
        context = browser.new_context(base_url=live.url, viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page = context.new_page()
        page.on("console", lambda msg: console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda exc: console.append(f"[pageerror] {exc}"))
        opened.append((context, page))
        return page

    yield open_page

    report = getattr(request.node, "rep_call", None)
    failed = report is None or report.failed  # no call report: setup failed
    for index, (context, page) in enumerate(opened):
        if failed and not page.is_closed():
            suffix = f"-{index}" if index else ""
            path = ARTIFACTS / "failures" / f"{_safe_name(request.node.name)}{suffix}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(path), full_page=True)
        with contextlib.suppress(Exception):
            context.close()


@pytest.fixture
def page(page_for, server):
    """A fresh page on the mock ``server`` (relative URLs: ``page.goto("/")``)."""
    return page_for(server)


@pytest.fixture(scope="session")
def browser_clip(tmp_path_factory):
    """A 2-second synthetic game clip, 640x360 at 30 fps (generated once per run)."""
    from projects.synthetic import write_game_clip

    path = tmp_path_factory.mktemp("browser-clips") / "game-640x360.mp4"
    write_game_clip(path, width=640, height=360, fps=30, seconds=2.0)
    return path


# --- Helpers ---------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150]


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    """Save ``test-artifacts/screenshots/<name>.png`` (for people to look at)."""
    path = ARTIFACTS / "screenshots" / f"{_safe_name(name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path


_unique = itertools.count(1)


def unique_username(prefix: str = "user") -> str:
    """A username no other test of this run (sharing the live server) has taken."""
    return f"{prefix}{next(_unique)}{uuid.uuid4().hex[:6]}"


def signup(page, username: str, password: str) -> None:
    """Create an account through ``/accounts/signup/``; ends signed in on the projects page."""
    page.goto("/accounts/signup/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password1]").fill(password)
    page.locator("input[name=password2]").fill(password)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/" not in url)


def login(page, username: str, password: str) -> None:
    """Sign in through ``/accounts/login/``."""
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/" not in url)


def api(page, method: str, path: str, body=None):
    """Call the JSON API from inside the page (its session cookie and CSRF token).

    Returns ``{"status", "headers", "json"}``; the request counts as the page's own.
    """
    return page.evaluate(
        """async ([method, path, body]) => {
            const token = (document.cookie.match(/(?:^|; )csrftoken=([^;]*)/) || [])[1] || "";
            const init = {method, headers: {"X-CSRFToken": decodeURIComponent(token)},
                          credentials: "same-origin"};
            if (body !== null) {
                init.headers["Content-Type"] = "application/json";
                init.body = JSON.stringify(body);
            }
            const response = await fetch(path, init);
            const text = await response.text();
            let json = null;
            try { json = JSON.parse(text); } catch (e) { json = null; }
            return {status: response.status, json,
                    headers: Object.fromEntries(response.headers.entries())};
        }""",
        [method, path, body],
    )


# The sync badge's history across navigations: a MutationObserver installed in every
# document of the context records each change of #sync-badge (status, visibility, text)
# into sessionStorage, which survives page loads within the tab.
_SYNC_BADGE_RECORDER = """
(() => {
  const KEY = "__syncBadgeHistory";
  const read = () => { try { return JSON.parse(sessionStorage.getItem(KEY)) || []; }
                       catch (e) { return []; } };
  let last = null;
  const record = () => {
    const badge = document.getElementById("sync-badge");
    const state = badge ? {
      status: badge.dataset.status || "",
      hidden: badge.hidden || getComputedStyle(badge).display === "none",
      text: (badge.textContent || "").trim(),
    } : {status: "(absent)", hidden: true, text: ""};
    const key = JSON.stringify(state);
    if (key === last) return;
    last = key;
    const history = read();
    history.push({...state, path: location.pathname, t: Date.now()});
    sessionStorage.setItem(KEY, JSON.stringify(history));
  };
  const start = () => {
    record();
    new MutationObserver(record).observe(document.documentElement, {
      subtree: true, childList: true, characterData: true, attributes: true,
      attributeFilter: ["data-status", "hidden", "class", "style"],
    });
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, {once: true});
  } else {
    start();
  }
})();
"""


def record_sync_badge(page) -> None:
    """Record every state ``#sync-badge`` shows from now on (see ``sync_badge_history``)."""
    page.context.add_init_script(_SYNC_BADGE_RECORDER)


def sync_badge_history(page) -> list[dict]:
    """The badge states recorded in this tab: ``[{status, hidden, text, path, t}, ...]``."""
    return page.evaluate("() => JSON.parse(sessionStorage.getItem('__syncBadgeHistory') || '[]')")


def probe_mp4(path) -> dict:
    """Open a file with PyAV and decode its video: ``{format, width, height, frames, ...}``.

    Raises if it is not a decodable MP4 with an H.264 video stream.
    """
    import av

    with av.open(str(path)) as container:
        if "mp4" not in container.format.name:
            raise AssertionError(f"not an MP4 container: {container.format.name}")
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {
            "format": container.format.name,
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "frames": frames,
            "duration": float(container.duration or 0) / 1_000_000,
        }


def poll(check, *, timeout: float = 10.0, interval: float = 0.2, message: str = ""):
    """Call ``check()`` until it returns something truthy; return that, or fail."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{message or 'condition'} not met in {timeout}s (last: {last!r})")
        time.sleep(interval)


def sync_status(page) -> dict:
    """``GET /api/sync/status`` from the page."""
    response = api(page, "GET", "/api/sync/status")
    assert response["status"] == 200, response
    return response["json"]


def wait_synced(page, *, timeout: float = 10.0) -> dict:
    """Wait until every write is committed (status ok, not dirty); returns the status.

    Pages write by themselves (opening a project records it), so a status read right
    after a navigation can see a write still in flight ("pending").
    """
    return poll(
        lambda: (status := sync_status(page))["status"] == "ok" and not status["dirty"] and status,
        timeout=timeout,
        message="the sync status to be ok and clean",
    )


def create_project(page, name: str, aspect_ratio: str = "9:16") -> int:
    """Create a project on the projects page (test ids ``new-project-*``) and open it.

    Returns the project id, with the page on ``/projects/<id>/``.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if urllib.parse.urlsplit(page.url).path != "/":
        page.goto("/")
    page.get_by_test_id("new-project-name").fill(name)
    page.get_by_test_id("new-project-aspect").select_option(aspect_ratio)
    page.get_by_test_id("new-project-submit").click()
    detail = re.compile(r"/projects/(\d+)/$")
    try:
        page.wait_for_url(detail, timeout=5_000)
    except PlaywrightTimeout:  # a page that stays on the list: open the new card
        page.get_by_test_id("project-card").filter(has_text=name).first.click()
        page.wait_for_url(detail)
    return int(detail.search(page.url)[1])


def upload_clip(page, path) -> None:
    """Upload a clip on the framing page (``clip-upload``); waits for its ``clip-item``."""
    items = page.get_by_test_id("clip-item")
    before = items.count()
    page.get_by_test_id("clip-upload").set_input_files(str(path))
    expect_count(items, before + 1, timeout=30_000)


def expect_count(locator, count: int, *, timeout: float = DEFAULT_TIMEOUT_MS) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_count(count, timeout=timeout)


def drag_by(page, locator, dx: float, dy: float, *, steps: int = 8) -> None:
    """Press the mouse in the middle of ``locator``, move it by (dx, dy), release."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    if box is None:
        raise AssertionError(f"{locator} has no box (not visible)")
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=steps)
    page.mouse.up()


# Records every aria-valuenow a progress bar (by test id) shows, in this document.
_PROGRESS_RECORDER = """
(testId) => {
  window.__progress = window.__progress || {};
  if (window.__progress[testId]) return;
  const values = window.__progress[testId] = [];
  const record = () => {
    const bar = document.querySelector(`[data-testid="${testId}"]`);
    if (!bar || !bar.hasAttribute("aria-valuenow")) return;
    const value = Number(bar.getAttribute("aria-valuenow"));
    if (values[values.length - 1] !== value) values.push(value);
  };
  record();
  new MutationObserver(record).observe(document.documentElement, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["aria-valuenow"],
  });
}
"""


def watch_progress(page, test_id: str) -> None:
    """Start recording the values a progress bar shows (``progress_values``)."""
    page.evaluate(_PROGRESS_RECORDER, test_id)


def progress_values(page, test_id: str) -> list[float]:
    return page.evaluate("(id) => (window.__progress || {})[id] || []", test_id)


def wait_for_progress(page, test_id: str, *, timeout: float = 60.0) -> list[float]:
    """Wait until the progress bar says 100; returns every value it showed (recorded)."""
    bar = page.get_by_test_id(test_id)
    page.wait_for_function(
        '(id) => { const bar = document.querySelector(`[data-testid="${id}"]`);'
        " return bar && Number(bar.getAttribute('aria-valuenow')) >= 100; }",
        arg=test_id,
        timeout=timeout * 1000,
    )
    assert bar.get_attribute("role") == "progressbar", "the progress bar needs role=progressbar"
    return progress_values(page, test_id)


def video_plays(page, locator, *, seconds: float = 0.8) -> dict:
    """Wait for a <video> to have data (readyState >= 2), play it muted, see time advance.

    Returns ``{ready, start, end, error, src}``; plays when ``end > start``.
    """
    locator.wait_for(state="attached")
    return locator.evaluate(
        """async (video, seconds) => {
            const deadline = Date.now() + 15000;
            while (video.readyState < 2 && !video.error && Date.now() < deadline) {
                await new Promise((resolve) => setTimeout(resolve, 100));
            }
            const ready = video.readyState;
            const start = video.currentTime;
            video.muted = true;
            let error = video.error ? `media error ${video.error.code}` : null;
            if (!error) {
                try { await video.play(); } catch (e) { error = String(e); }
                await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
                video.pause();
            }
            return {ready, start, end: video.currentTime, error, src: video.currentSrc};
        }""",
        seconds,
    )


# --- Hooks -----------------------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    marker = pytest.mark.browser
    for item in items:
        if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    if report.failed and BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
        for live in _started_servers:
            report.sections.append((f"daphne log ({live.name}, tail)", live.log_tail()))
        console = getattr(item, "_browser_console", None)
        if console:
            report.sections.append(("browser console", "\n".join(console[-100:])))
    return report


def pytest_sessionfinish(session, exitstatus):
    for live in _started_servers:
        live.stop()
