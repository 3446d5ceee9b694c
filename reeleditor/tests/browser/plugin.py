"""The browser tests' pytest plugin (listed in the root ``conftest.py``): fixtures and hooks.

- ``server``: the live app in ``EXPORT_MODE=mock`` (exports render a small two-second
  video quickly, through the same queue, upload, finalize and sync path); ``real_server``:
  the real render, started only by the tests that ask for it; ``start_live_server(name,
  **env)``: one more, with settings of its own (reeleditor/tests/test_browser_export_controls.py:
  a model file, a slowed mock render). Each is a ``LiveServer``
  with its own bucket on the session's moto S3 endpoint (``moto_endpoint``) behind its
  own ``S3Proxy``; ``s3_proxy`` is the ``server``'s, back up after every test.
- ``browser``, ``page_for(live_server)``, ``page``: Debian's Chromium
  (``/usr/bin/chromium``, installed by ``scripts/test-services.sh``) driven by
  Playwright; Playwright cannot download its own browsers here.
- A test that uses any of them is marked ``browser``. A failing one gets a screenshot in
  ``test-artifacts/failures/<test>.png`` and, in its report, the tail of each live
  server's log and the browser console. A test whose pages report a
  Content-Security-Policy violation (``securitypolicyviolation``) fails.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest

from .live_server import LiveServer
from .pages import ARTIFACTS, DEFAULT_TIMEOUT_MS, safe_name
from .s3_proxy import S3Proxy

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
# Playwright's mobile emulation for ``mobile_page_for``: a phone (390x844, the size of
# an iPhone 12 to 15) and a tablet (768x1024), both touch screens.
DEVICES = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "tablet": {
        "viewport": {"width": 768, "height": 1024},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}
# Every page of every browser test reports Content-Security-Policy violations to the
# console with this prefix, and a test with one fails (reeleditor/csp.py).
CSP_VIOLATION = "CSP violation:"
_REPORT_CSP_VIOLATIONS = f"""
document.addEventListener("securitypolicyviolation", (event) => {{
  console.error(`{CSP_VIOLATION} ${{event.effectiveDirective}} blocked ${{event.blockedURI}}`
    + ` at ${{event.sourceFile}}:${{event.lineNumber}}`);
}}, true);
"""
BROWSER_FIXTURES = {
    "page",
    "page_for",
    "mobile_page_for",
    "browser",
    "server",
    "real_server",
    "s3_proxy",
    "start_live_server",
}

_started_servers: list[LiveServer] = []


def _start_server(name, tmp_path_factory, moto_endpoint, proxy, export_mode, extra_env=None):
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
        extra_env=extra_env,
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


@pytest.fixture(scope="session")
def start_live_server(tmp_path_factory, moto_endpoint):
    """``start_live_server(name, export_mode="mock", **env)``: one more live app with
    settings of its own (a model file, a slower mock render...), for the few tests that
    need them; each gets its own proxy and bucket and is stopped at the end of the run
    (stop it earlier with ``.stop()``)."""
    started: list[tuple[LiveServer, S3Proxy]] = []

    def start(name: str, export_mode: str = "mock", **env: str) -> LiveServer:
        proxy = S3Proxy(moto_endpoint).start()
        try:
            live = _start_server(name, tmp_path_factory, moto_endpoint, proxy, export_mode, env)
        except BaseException:
            proxy.stop()
            raise
        started.append((live, proxy))
        return live

    yield start
    for live, proxy in started:
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

    Viewport 1280x720, downloads accepted (keyword arguments go to the context:
    ``page_for(live, storage_state=...)``). On failure: a screenshot in
    ``test-artifacts/failures/<test>.png``, the console in the report.
    """
    opened = []
    console: list[str] = []
    request.node._browser_console = console

    def open_page(live: LiveServer, **context_options):
        options = {"viewport": VIEWPORT, "accept_downloads": True, **context_options}
        context = browser.new_context(base_url=live.url, **options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.add_init_script(_REPORT_CSP_VIOLATIONS)
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
            path = ARTIFACTS / "failures" / f"{safe_name(request.node.name)}{suffix}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(path), full_page=True)
        with contextlib.suppress(Exception):
            context.close()
    violations = [line for line in console if CSP_VIOLATION in line]
    if violations and not failed:
        pytest.fail("the page broke its Content-Security-Policy:\n" + "\n".join(violations))


@pytest.fixture
def mobile_page_for(page_for):
    """``mobile_page_for(live_server, device="phone", **context_options)``: like
    ``page_for``, emulating a touch device of ``DEVICES`` ("phone": 390x844, "tablet":
    768x1024); the CSP reporting and failure screenshots are ``page_for``'s."""

    def open_page(live: LiveServer, device: str = "phone", **context_options):
        return page_for(live, **{**DEVICES[device], **context_options})

    return open_page


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
