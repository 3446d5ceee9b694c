"""The main flow on a phone and a tablet, by touch (issue 15: "Works on a phone").

Contexts emulate a 390x844 phone and a 768x1024 tablet (``mobile_page_for``:
``is_mobile``, ``has_touch``); every drag and pinch is real touch input
(``Input.dispatchTouchEvent`` over CDP, which Chromium turns into pointer events with
pointerType "touch"; ``touch_drag``, ``pinch``, ``touch_gesture`` in
``reeleditor/tests/browser/pages.py``). The flow: sign up, create a
project, upload a clip, two crop keyframes by finger drags at two times picked on the
scrub bar by finger, export, a highlight added by a tap and moved and pinched by touch,
the final export, the gallery. Also: a crop pinch keeps the project's shape and is one
keyframe and one undo step; the handles have 44 px hit areas on a coarse pointer; a
game upload survives going offline and back.

Screenshots: ``test-artifacts/screenshots/touch-*.png``.
"""

import re

import pytest
from playwright.sync_api import expect

from reeleditor.tests.browser import (
    api,
    create_project,
    pinch,
    poll,
    screenshot,
    signup,
    touch_drag,
    touch_gesture,
    unique_username,
    upload_clip,
    wait_for_progress,
    watch_progress,
)

PASSWORD = "a-long-enough-pw-123"
CHUNK_URL = re.compile(r"/api/games/uploads/[0-9a-f]{32}/chunks/(\d+)$")


def _panel(page, name: str) -> None:
    """On a phone the editors' panels are tabs: show ``name``'s (nothing elsewhere)."""
    tab = page.locator(f".panel-tabs [data-tab={name}]")
    if tab.count() and tab.is_visible():
        tab.tap()
        expect(tab).to_have_attribute("aria-selected", "true")


def _scrub_by_touch(page, video_test_id: str, scrub_test_id: str, fraction: float) -> float:
    """Tap the scrub bar ``fraction`` of the way along; returns the video's time then."""
    scrub = page.get_by_test_id(scrub_test_id)
    scrub.scroll_into_view_if_needed()
    box = scrub.bounding_box()
    before = page.evaluate("() => window.scrollY")
    x = box["x"] + box["width"] * fraction
    y = box["y"] + box["height"] / 2
    touch_drag_at(page, x - 10, y, 10, 0)
    value = float(scrub.input_value())
    assert abs(value / float(scrub.get_attribute("max")) - fraction) < 0.15, value
    page.wait_for_function(
        "([id, t]) => Math.abs(document.querySelector(`[data-testid=${id}]`).currentTime - t)"
        " < 0.1",
        arg=[video_test_id, value],
    )
    assert page.evaluate("() => window.scrollY") == before, "scrubbing scrolled the page"
    return value


def touch_drag_at(page, x: float, y: float, dx: float, dy: float, steps: int = 6) -> None:
    touch_gesture(page, [[(x + dx * i / steps, y + dy * i / steps) for i in range(steps + 1)]])


def _clip(page, project_id) -> dict:
    project = api(page, "GET", f"/api/projects/{project_id}")
    assert project["status"] == 200, project
    (clip,) = project["json"]["clips"]
    return clip


def _regions(page, project_id) -> list[dict]:
    return api(page, "GET", f"/api/projects/{project_id}/highlights")["json"]["regions"]


def _ellipse(page) -> dict:
    return page.get_by_test_id("region-ellipse").evaluate(
        "(e) => ({x: +e.dataset.x, y: +e.dataset.y, rx: +e.dataset.rx, ry: +e.dataset.ry})"
    )


def _open_framing(page, name: str, browser_clip) -> int:
    signup(page, unique_username("mobile"), PASSWORD)
    project_id = create_project(page, name, "9:16")
    _panel(page, "clips")
    upload_clip(page, browser_clip)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )
    _panel(page, "edit")
    expect(page.get_by_test_id("crop-rect")).to_be_visible()
    return project_id


@pytest.mark.parametrize("device", ["phone", "tablet"])
def test_main_flow_by_touch(mobile_page_for, server, browser_clip, device):
    page = mobile_page_for(server, device)
    shot = lambda step: screenshot(page, f"touch-{device}-{step}")  # noqa: E731
    signup(page, unique_username(f"m{device}"), PASSWORD)
    expect(page.get_by_test_id("new-project-name")).to_be_visible()
    shot("1-projects")
    project_id = create_project(page, "Phone reel", "9:16")

    # Framing: upload, then two crop keyframes by finger drags at two times.
    _panel(page, "clips")
    upload_clip(page, browser_clip)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )
    _panel(page, "edit")
    crop = page.get_by_test_id("crop-rect")
    expect(crop).to_be_visible()
    shot("2-framing")
    first = _scrub_by_touch(page, "framing-video", "scrubber", 0.25)
    scroll = page.evaluate("() => [window.scrollX, window.scrollY]")
    touch_drag(page, crop, -40, 0)
    second = _scrub_by_touch(page, "framing-video", "scrubber", 0.75)
    touch_drag(page, crop, 80, 0)
    assert page.evaluate("() => [window.scrollX, window.scrollY]") == scroll, "the page moved"
    expect(page.get_by_test_id("keyframe-item")).to_have_count(2)
    expect(page.get_by_test_id("save-status")).to_contain_text("Saved", timeout=10_000)
    keyframes = poll(
        lambda: len(k := _clip(page, project_id)["crop_keyframes"]) == 2 and k,
        message="two crop keyframes saved",
    )
    assert [round(k["time"], 1) for k in keyframes] == [round(first, 1), round(second, 1)]
    assert keyframes[0]["x"] < keyframes[1]["x"], f"the crop did not follow: {keyframes}"
    shot("3-two-keyframes")

    # Export the working video.
    _panel(page, "export")
    page.get_by_test_id("export-button").tap()
    expect(page.get_by_test_id("export-progress")).to_be_visible()
    watch_progress(page, "export-progress")
    wait_for_progress(page, "export-progress", timeout=90)
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")
    shot("4-exported")
    page.get_by_test_id("open-overlay").tap()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/overlay/$"))

    # Overlay: a highlight by a tap, its ellipse moved by a finger, then pinched.
    page.wait_for_function(
        "() => document.querySelector('[data-testid=overlay-video]').readyState >= 1"
    )
    _panel(page, "highlights")
    expect(page.get_by_test_id("add-region")).to_be_enabled()
    page.get_by_test_id("add-region").tap()
    expect(page.get_by_test_id("region-item")).to_have_count(1)
    ellipse = page.get_by_test_id("region-ellipse")
    expect(ellipse).to_be_visible()
    start = _ellipse(page)
    touch_drag(page, ellipse, 30, 20)
    moved = poll(lambda: (e := _ellipse(page))["x"] > start["x"] + 5 and e, message="a move")
    assert moved["y"] > start["y"] + 5, (start, moved)
    assert (moved["rx"], moved["ry"]) == (start["rx"], start["ry"]), (start, moved)
    pinch(page, ellipse, 1.5, spread=15)
    grown = poll(lambda: (e := _ellipse(page))["rx"] > moved["rx"] * 1.2 and e, message="pinch")
    assert abs(grown["rx"] / grown["ry"] - moved["rx"] / moved["ry"]) < 0.02, (moved, grown)
    saved = poll(
        lambda: (
            (r := _regions(page, project_id))
            and abs(r[0]["keyframes"][0]["rx"] - grown["rx"]) < 1
            and r
        ),
        message="the pinched ellipse saved",
    )
    assert len(saved) == 1 and len(saved[0]["keyframes"]) == 1, saved
    assert abs(saved[0]["keyframes"][0]["x"] - grown["x"]) < 1, (saved, grown)
    shot("5-overlay")
    # The pinch was one undo step: back to the moved ellipse.
    page.get_by_test_id("undo").tap()
    poll(lambda: abs(_ellipse(page)["rx"] - moved["rx"]) < 0.5, message="undo the pinch")
    page.get_by_test_id("redo").tap()
    poll(lambda: abs(_ellipse(page)["rx"] - grown["rx"]) < 0.5, message="redo the pinch")
    # Two fingers moved together carry the ellipse, its size kept.
    box = ellipse.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    steps = [(-20 * i / 6, 15 * i / 6) for i in range(7)]
    touch_gesture(
        page,
        [[(x - 15 + dx, y + dy) for dx, dy in steps], [(x + 15 + dx, y + dy) for dx, dy in steps]],
    )
    carried = poll(lambda: (e := _ellipse(page))["x"] < grown["x"] - 5 and e, message="carried")
    assert carried["y"] > grown["y"] + 5 and abs(carried["rx"] - grown["rx"]) < 0.5, carried

    # Final export, then the gallery.
    _panel(page, "export")
    page.get_by_test_id("final-export-button").tap()
    expect(page.get_by_test_id("final-export-progress")).to_be_visible()
    watch_progress(page, "final-export-progress")
    wait_for_progress(page, "final-export-progress", timeout=90)
    shot("6-final-exported")
    page.get_by_test_id("open-gallery").tap()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/gallery/$"))
    expect(page.get_by_test_id("gallery-item")).to_have_count(1)
    shot("7-gallery")


def test_a_pinch_resizes_the_crop_box_with_its_shape_one_undo_step(
    mobile_page_for, server, browser_clip
):
    page = mobile_page_for(server, "phone")
    project_id = _open_framing(page, "Pinch crop", browser_clip)
    crop = page.get_by_test_id("crop-rect")
    before = crop.bounding_box()
    scroll = page.evaluate("() => [window.scrollX, window.scrollY, visualViewport.scale]")

    pinch(page, crop, 0.5, spread=40)
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    after = crop.bounding_box()
    assert after["width"] < before["width"] * 0.75, (before, after)
    assert abs(after["width"] / after["height"] - before["width"] / before["height"]) < 0.02
    assert page.evaluate("() => [window.scrollX, window.scrollY, visualViewport.scale]") == scroll
    (keyframe,) = poll(
        lambda: _clip(page, project_id)["crop_keyframes"], message="the keyframe saved"
    )
    assert abs(keyframe["width"] / keyframe["height"] - 9 / 16) < 0.01, keyframe
    # Shrunk around the pinch's centre: the middle of the first, centred crop of 640x360.
    centre = (keyframe["x"] + keyframe["width"] / 2, keyframe["y"] + keyframe["height"] / 2)
    assert abs(centre[0] - 320) < 4 and abs(centre[1] - 180) < 4, keyframe
    screenshot(page, "touch-phone-crop-pinched")

    # Pinching out grows it again, never past the frame.
    pinch(page, crop, 4, spread=20)
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)  # the same time: replaced
    grown = crop.bounding_box()
    frame = page.locator(".video-frame").first.bounding_box()
    assert grown["width"] > after["width"] * 1.3, (after, grown)
    assert grown["height"] <= frame["height"] + 1 and grown["y"] >= frame["y"] - 1, (grown, frame)

    # Each pinch was one undo step.
    page.get_by_test_id("undo").tap()
    poll(lambda: abs(crop.bounding_box()["width"] - after["width"]) < 1.5, message="undo 1")
    page.get_by_test_id("undo").tap()
    expect(page.get_by_test_id("keyframe-item")).to_have_count(0)
    poll(lambda: abs(crop.bounding_box()["width"] - before["width"]) < 1.5, message="undo 2")
    expect(page.get_by_test_id("undo")).to_be_disabled()


def test_handles_have_44_px_hit_areas_on_touch(mobile_page_for, server, browser_clip):
    page = mobile_page_for(server, "phone")
    _open_framing(page, "Hit areas", browser_clip)
    assert page.evaluate("() => matchMedia('(pointer: coarse)').matches")
    handle = page.get_by_test_id("crop-handle-se")
    box = handle.bounding_box()
    assert box["width"] < 44  # the look is unchanged; the hit area is invisible
    # 28 px up and left of the visible corner: off the handle, inside its 44 px square.
    crop = page.get_by_test_id("crop-rect")
    pinch(page, crop, 0.5, spread=40)  # make room to grow
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] - 28, box["y"] + box["height"] - 28
    assert page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)"
        " === document.querySelector('[data-testid=crop-handle-se]')",
        [x, y],
    ), "the handle's hit area is smaller than 44 px"
    # A finger there resizes the box from its top-left corner.
    before = crop.bounding_box()
    touch_drag_at(page, x, y, 30, 30)
    after = crop.bounding_box()
    assert after["width"] > before["width"] + 10, (before, after)
    assert abs(after["x"] - before["x"]) < 1 and abs(after["y"] - before["y"]) < 1


def test_a_game_upload_goes_on_after_the_phone_was_offline(
    mobile_page_for, server, browser_clip, tmp_path
):
    # Two chunks (GAME_UPLOAD_CHUNK_BYTES: 8 MiB): the clip's bytes, padded.
    game_file = tmp_path / "phone-game.mp4"
    game_file.write_bytes(browser_clip.read_bytes().ljust(9 * 1024**2, b"\0"))
    page = mobile_page_for(server, "phone")
    signup(page, unique_username("offline"), PASSWORD)
    page.goto("/games/")

    sent = []
    cut = []

    def offline_at_second(route):
        index = int(CHUNK_URL.search(route.request.url)[1])
        sent.append(index)
        if index == 1 and not cut:
            cut.append(index)
            page.context.set_offline(True)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route(CHUNK_URL, offline_at_second)
    page.get_by_test_id("game-name").fill("Phone game")
    page.get_by_test_id("game-file").set_input_files(str(game_file))
    page.get_by_test_id("game-upload-start").tap()
    expect(page.get_by_test_id("game-upload-text")).to_contain_text("Offline")
    assert page.evaluate("() => navigator.onLine") is False
    screenshot(page, "touch-phone-game-upload-offline")
    page.wait_for_timeout(1500)  # still waiting, no retry given up
    expect(page.get_by_test_id("game-upload-error")).to_be_hidden()
    page.context.set_offline(False)
    page.wait_for_url(re.compile(r"/games/\d+/$"), timeout=60_000)
    assert sent == [0, 1, 1], sent
