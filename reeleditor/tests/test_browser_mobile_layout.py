"""Every page on a phone (390x844) and a tablet (768x1024), touch screens both
(``mobile_page_for``): nothing wider than the viewport, the editors stacked with their
panels as tabs on the phone and as they were on the tablet, hit targets of 44 px in the
editors, and the web app manifest with its icons.

The data is made once, on a desktop page: a project with a clip, its working video
(mock export), a highlight and a final video, a share link, a game and a history of
versions; then each page is opened in a phone and a tablet context signed in as the
same user (its cookies).

Screenshots: ``test-artifacts/screenshots/mobile-<phone|tablet>-<page>.png``.
"""

from __future__ import annotations

import json
import re
import struct

from playwright.sync_api import expect

from reeleditor.tests.browser import (
    create_project,
    make_final_video,
    screenshot,
    signup,
    unique_username,
    upload_clip,
    wait_for_progress,
)

PASSWORD = "a-long-enough-pw-123"
# What sticks out past the right edge of the viewport, for the failure message.
_OVERFLOW = """(width) => {
    const wide = [];
    for (const el of document.body.querySelectorAll("*")) {
        const box = el.getBoundingClientRect();
        let clipped = false;  // inside a scroll box (a filmstrip): not the page's width
        for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
            if (getComputedStyle(up).overflowX !== "visible") { clipped = true; break; }
        }
        if (box.width && box.right > width + 1 && !clipped) {
            wide.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}`
                + (el.getAttribute("class") ? "." + el.getAttribute("class").trim() : "")
                + ` right=${Math.round(box.right)}`);
        }
    }
    return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
            wide: wide.slice(0, 12)};
}"""
# The visible buttons (and button-like links, selects) in the editor and its head that
# are smaller than 44 px either way.
_SMALL_TARGETS = """() => [...document.querySelectorAll(
        ".editor-head button, .editor-head a, #editor button, #editor .button, #editor select")]
    .filter((el) => el.offsetParent !== null && !el.closest("dialog"))
    .map((el) => ({el, box: el.getBoundingClientRect()}))
    .filter(({box}) => box.width > 0 && (box.width < 43.5 || box.height < 43.5))
    .map(({el, box}) => `${el.tagName.toLowerCase()}#${el.id || ""}`
        + ` "${(el.textContent || el.getAttribute("aria-label") || "").trim().slice(0, 30)}"`
        + ` ${Math.round(box.width)}x${Math.round(box.height)}`)"""


def _expect_fits(page, name: str) -> None:
    # Scripts have laid the page out (lists drawn from the API, the video sized).
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    # On a phone the layout viewport grows to fit what is too wide (the page is zoomed
    # out), so the measure is the device's width, not innerWidth.
    width = page.viewport_size["width"]
    measured = page.evaluate(_OVERFLOW, width)
    assert measured["innerWidth"] == width, (name, measured)
    assert measured["scrollWidth"] <= width + 1, (name, measured)


def _data(page, browser_clip) -> dict:
    """The desktop owner's data: project, working and final video, share link, game,
    history. Returns the paths to visit."""
    signup(page, unique_username("phone"), PASSWORD)
    project_id = make_final_video(
        page, browser_clip, "A long project name for a small phone screen"
    )
    share = page.get_by_test_id("share").first
    share.get_by_test_id("share-create").click()
    share_url = share.get_by_test_id("share-url").input_value()

    page.goto("/games/")
    page.get_by_test_id("game-name").fill("Saturday game against the neighbours")
    page.get_by_test_id("game-file").set_input_files(str(browser_clip))
    page.get_by_test_id("game-upload-start").click()
    page.wait_for_url(re.compile(r"/games/\d+/$"), timeout=60_000)
    game_path = re.search(r"/games/\d+/$", page.url)[0]
    expect(page.get_by_test_id("filmstrip-tile").first).to_be_visible(timeout=60_000)

    page.goto("/history/")
    version = page.get_by_test_id("history-row").first.get_attribute("data-version")
    return {
        "projects": "/",
        "framing": f"/projects/{project_id}/",
        "overlay": f"/projects/{project_id}/overlay/",
        "gallery": f"/projects/{project_id}/gallery/",
        "games": "/games/",
        "game": game_path,
        "history": "/history/",
        "history-version": f"/history/{version}/",
        "account": "/accounts/",
        "share": share_url,
    }


def _phone_editor(page, name: str, tabs: list[str]) -> None:
    """The phone's editor: the video the full width, one panel per tab, big targets."""
    width = page.evaluate("window.innerWidth")
    stage = page.locator("#stage").bounding_box()
    assert stage["width"] >= width - 20, stage
    bar = page.get_by_test_id("panel-tabs")
    expect(bar).to_be_visible()
    transport = page.locator("#transport").bounding_box()
    assert transport["y"] >= stage["y"] + stage["height"] - 1, (stage, transport)
    for tab in tabs:
        bar.locator(f"[data-tab={tab}]").click()
        expect(bar.locator(f"[data-tab={tab}]")).to_have_attribute("aria-selected", "true")
        for other in tabs:
            panel = page.locator(f"#panel-{other}")
            if other == tab:
                expect(panel).to_be_visible()
            else:
                expect(panel).to_be_hidden()
        small = page.evaluate(_SMALL_TARGETS)
        assert not small, (name, tab, small)
        _expect_fits(page, f"{name} {tab}")
        # The tab bar near the top, so the shot shows the panel (a full-page shot drops
        # the touch emulation while it is taken).
        page.evaluate("(y) => window.scrollTo(0, y)", bar.bounding_box()["y"] - 180)
        screenshot(page, f"mobile-phone-{name}-{tab}")
    bar.locator(f"[data-tab={tabs[0]}]").click()


def _tablet_editor(page) -> None:
    """The tablet keeps the desktop editor: the side panels beside the video, no tabs."""
    expect(page.get_by_test_id("panel-tabs")).to_be_hidden()
    stage = page.locator("#stage").bounding_box()
    side = page.locator(".editor-side").bounding_box()
    assert side["x"] >= stage["x"] + stage["width"] - 1, (stage, side)
    for panel in page.locator("[data-panel]").all():
        expect(panel).to_be_visible()
    # The trim fields whole inside their box (they were cut off at this width).
    for field in page.locator(".tool .range-field output, .tool input[type=range]").all():
        box, tool = field.bounding_box(), field.locator("xpath=ancestor::fieldset").bounding_box()
        assert box["x"] + box["width"] <= tool["x"] + tool["width"], (box, tool)


def _visit_every_page(device, mobile_page_for, server, paths, storage_state) -> None:
    # Signed out: sign-in and sign-up.
    visitor = mobile_page_for(server, device)
    for name, path in (("sign-in", "/accounts/login/"), ("sign-up", "/accounts/signup/")):
        visitor.goto(path)
        _expect_fits(visitor, f"{device} {name}")
        screenshot(visitor, f"mobile-{device}-{name}", full_page=True)

    owner = mobile_page_for(server, device, storage_state=storage_state)
    for name, path in paths.items():
        answer = owner.goto(path)
        assert answer.status == 200, (name, path, answer.status)
        editor = name in ("framing", "overlay")
        if editor:
            owner.wait_for_function("() => document.querySelector('#stage video').readyState >= 1")
        _expect_fits(owner, f"{device} {name}")
        screenshot(owner, f"mobile-{device}-{name}", full_page=not editor)
        if name == "share":
            video = owner.get_by_test_id("share-video").bounding_box()
            width = owner.evaluate("window.innerWidth")
            assert video["x"] >= 0 and video["x"] + video["width"] <= width + 1, video
        if editor and device == "phone":
            tabs = ["edit", "clips" if name == "framing" else "highlights", "export"]
            _phone_editor(owner, name, tabs)
        elif editor:
            _tablet_editor(owner)


def test_every_page_fits_a_phone_and_a_tablet(page, mobile_page_for, server, browser_clip):
    paths = _data(page, browser_clip)
    storage_state = page.context.storage_state()
    for device in ("phone", "tablet"):
        _visit_every_page(device, mobile_page_for, server, paths, storage_state)


def _png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == b"\x89PNG\r\n\x1a\n", body[:8]
    return struct.unpack(">II", body[16:24])


def test_the_web_app_manifest_and_its_icons(page):
    page.goto("/accounts/login/")
    href = page.locator('link[rel="manifest"]').get_attribute("href")
    assert href == "/static/manifest.webmanifest", href
    assert page.locator('meta[name="theme-color"]').get_attribute("content")
    answer = page.request.get(href)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/manifest+json"), answer.headers
    manifest = json.loads(answer.body())
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert manifest["name"] and manifest["short_name"]
    assert manifest["theme_color"] and manifest["background_color"]
    purposes = set()
    for icon in manifest["icons"]:
        body = page.request.get(f"/static/{icon['src']}")
        assert body.status == 200, icon
        assert body.headers["content-type"] == "image/png", icon
        width, height = _png_size(body.body())
        assert f"{width}x{height}" == icon["sizes"], icon
        purposes.add(icon["purpose"])
    assert {"192x192", "512x512"} <= {icon["sizes"] for icon in manifest["icons"]}
    assert purposes == {"any", "maskable"}
    apple = page.locator('link[rel="apple-touch-icon"]').get_attribute("href")
    assert _png_size(page.request.get(apple).body()) == (180, 180)


def test_the_phone_overlay_stage_takes_the_videos_shape(
    page, mobile_page_for, server, browser_clip
):
    # A landscape reel on a phone: the stage was a fixed 56 % of the screen's height, so
    # the 16:9 video sat in a box of empty space. The stage now has the video's shape;
    # a tall reel is limited in height and keeps its full width.
    signup(page, unique_username("landscape"), PASSWORD)
    project_id = create_project(page, "Wide angle", "16:9")
    upload_clip(page, browser_clip)
    page.get_by_test_id("export-button").click()
    wait_for_progress(page, "export-progress", timeout=90)
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")
    phone = mobile_page_for(server, "phone", storage_state=page.context.storage_state())
    phone.goto(f"/projects/{project_id}/overlay/")
    phone.wait_for_function("() => document.querySelector('#stage video').readyState >= 1")
    phone.wait_for_timeout(300)  # the frame is fitted on resize
    stage = phone.locator("#stage").bounding_box()
    frame = phone.locator("#video-frame").bounding_box()
    assert stage["width"] >= phone.viewport_size["width"] - 20, stage
    assert abs(stage["height"] - frame["height"]) <= 4, (stage, frame)
    assert abs(stage["height"] - stage["width"] * 9 / 16) <= 4, stage
    screenshot(phone, "mobile-phone-overlay-landscape")
