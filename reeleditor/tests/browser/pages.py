"""Page helpers for the browser tests: sign up and in, the JSON API from the page, the
sync badge, uploads, drags, progress bars, videos, screenshots.

Each takes a Playwright ``page`` (from the ``page`` or ``page_for`` fixtures) whose base
URL is a live server, so paths are relative (``page.goto("/")``).
"""

from __future__ import annotations

import itertools
import re
import time
import urllib.parse
import uuid
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
DEFAULT_TIMEOUT_MS = 15_000


def safe_name(name: str) -> str:
    """``name`` as a file name (test ids hold brackets, slashes, colons...)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150]


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    """Save ``test-artifacts/screenshots/<name>.png`` (for people to look at)."""
    path = ARTIFACTS / "screenshots" / f"{safe_name(name)}.png"
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


def make_final_video(page, clip, name: str) -> int:
    """Through the UI: a project with ``clip``, its working video, one highlight and a
    final video; returns the project's id with the page on its gallery."""
    from playwright.sync_api import expect

    project_id = create_project(page, name, "9:16")
    upload_clip(page, clip)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )
    page.get_by_test_id("export-button").click()
    wait_for_progress(page, "export-progress", timeout=90)
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")

    page.get_by_test_id("open-overlay").click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/overlay/$"))
    page.get_by_test_id("add-region").click()
    expect(page.get_by_test_id("region-item")).to_have_count(1)
    poll(
        lambda: api(page, "GET", f"/api/projects/{project_id}/highlights")["json"]["regions"],
        message="the highlight region to be saved",
    )
    page.get_by_test_id("final-export-button").click()
    wait_for_progress(page, "final-export-progress", timeout=90)

    page.get_by_test_id("open-gallery").click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/gallery/$"))
    expect(page.get_by_test_id("gallery-item")).to_have_count(1)
    return project_id


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


# --- Touch: real touch input through the Chrome DevTools Protocol ---------------------
# Playwright has no touch drag; ``Input.dispatchTouchEvent`` makes Chromium fire the
# touch and pointer events (pointerType "touch") a finger would, hit-testing and all.


def _centre(locator) -> tuple[float, float]:
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    if box is None:
        raise AssertionError(f"{locator} has no box (not visible)")
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


# Chromium's gesture detector waits 300 ms for a second tap; a little more than that.
GESTURE_SETTLE_MS = 350


def touch_gesture(page, paths: list[list[tuple[float, float]]]) -> None:
    """Put one finger per path down at its first point, move them all step by step
    (the paths are as long as each other), lift them all: viewport CSS pixels."""
    cdp = page.context.new_cdp_session(page)
    try:

        def points(step: int) -> list[dict]:
            return [
                {"x": path[step][0], "y": path[step][1], "id": finger, "radiusX": 4, "radiusY": 4}
                for finger, path in enumerate(paths)
            ]

        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(0)})
        for step in range(1, len(paths[0])):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": points(step)})
        # Lift the fingers one at a time, as a hand does. Lifting all at once and
        # tapping again at once lets Chromium's gesture detector fold the next tap into
        # this gesture (no click comes from it: the flaky "tab tapped, panel unchanged").
        # (CDP releases a finger missing from a touchMove's list; touchEnd takes none.)
        down = points(len(paths[0]) - 1)
        while len(down) > 1:
            down.pop()
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": down})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    finally:
        cdp.detach()
    if len(paths) > 1:
        # Past the double-tap window, so a tap that follows is a tap of its own.
        page.wait_for_timeout(GESTURE_SETTLE_MS)


def touch_drag(page, locator, dx: float, dy: float, *, steps: int = 8) -> None:
    """One finger down in the middle of ``locator``, moved by (dx, dy), lifted."""
    x, y = _centre(locator)
    path = [(x + dx * i / steps, y + dy * i / steps) for i in range(steps + 1)]
    touch_gesture(page, [path])


def tap(page, locator) -> None:
    """One finger down and up in the middle of ``locator`` (``Input.dispatchTouchEvent``)."""
    x, y = _centre(locator)
    touch_gesture(page, [[(x, y)]])


def pinch(page, locator, scale: float, *, spread: float = 30, steps: int = 8) -> None:
    """Two fingers on ``locator``, ``spread`` px either side of its centre (horizontally),
    moved apart (``scale`` > 1) or together (< 1) to ``scale`` times their distance."""
    x, y = _centre(locator)
    end = spread * scale
    offsets = [spread + (end - spread) * i / steps for i in range(steps + 1)]
    touch_gesture(page, [[(x - o, y) for o in offsets], [(x + o, y) for o in offsets]])
