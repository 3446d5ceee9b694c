"""The two editors share one player: the same transport bar, the same keys.

Framing and overlay mode both build their player from ``static/js/player.js`` and its
transport bar from ``templates/projects/_transport.html``: every transport button is
an inline SVG icon (no text glyph that a font may lack and draw as an empty box), the
help line under the bar names the keys, and the same key presses move the playhead the
same way in both. Overlay mode's preview draws the spotlight with the constants the
render uses (``static/js/highlight_effects.json``).

Screenshots: ``test-artifacts/screenshots/editors-framing.png`` and
``editors-overlay.png``.
"""

import json
import re
from pathlib import Path

from playwright.sync_api import expect

from reeleditor.tests.browser import (
    create_project,
    screenshot,
    signup,
    unique_username,
    upload_clip,
    wait_for_progress,
)

PASSWORD = "a-long-enough-pw-123"
EFFECTS = json.loads(
    (Path(__file__).resolve().parents[2] / "static" / "js" / "highlight_effects.json").read_text()
)
KEYS = ["Space", "←", "→", "Shift", "Home", "End", "K", "Delete", "M"]
CLIP_FPS = 30  # the browser_clip fixture's


def _video_time(page, test_id: str) -> float:
    return page.get_by_test_id(test_id).evaluate("(video) => video.currentTime")


def _transport_icons(page) -> list[dict]:
    """Each transport button: its test id, its text, and the size of its drawn SVG."""
    return page.locator(".transport button").evaluate_all(
        """(buttons) => buttons.map((button) => {
            const svg = [...button.querySelectorAll("svg")]
                .find((s) => getComputedStyle(s).display !== "none");
            const box = svg ? svg.getBoundingClientRect() : null;
            return {
                testid: button.dataset.testid,
                text: button.innerText.trim(),
                width: box ? box.width : 0,
                height: box ? box.height : 0,
                paths: svg ? svg.querySelectorAll("path").length : 0,
            };
        })"""
    )


def _assert_transport_bar(page, play_id: str) -> None:
    icons = _transport_icons(page)
    assert [i["testid"] for i in icons] == [
        "frame-back",
        play_id,
        "frame-forward",
        "mute-toggle",
    ], icons
    for icon in icons:
        assert icon["text"] == "", f"{icon['testid']} shows a text glyph: {icon}"
        assert icon["paths"] and icon["width"] >= 10 and icon["height"] >= 10, icon
    help_line = page.get_by_test_id("key-help")
    expect(help_line).to_be_visible()
    for key in KEYS:
        expect(help_line).to_contain_text(key)


def _step_through_keys(page, video_id: str, fps: float, end: float) -> list[tuple]:
    """Press the player's keys on the page; returns (key, time seen, time expected)."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    frame = 1 / fps
    steps = [
        ("Home", 0.0),
        ("ArrowRight", frame),
        ("ArrowRight", 2 * frame),
        ("ArrowLeft", frame),
        ("Shift+ArrowRight", 1 + frame),
        ("Shift+ArrowLeft", frame),
        ("End", end),
        ("Home", 0.0),
    ]
    seen = []
    for key, expected in steps:
        page.keyboard.press(key)
        seen.append((key, round(_video_time(page, video_id), 3), round(expected, 3)))
    page.get_by_test_id("frame-forward").click()
    seen.append(("frame-forward", round(_video_time(page, video_id), 3), round(frame, 3)))
    timecode = page.locator("#timecode").inner_text()
    assert timecode.startswith(f"0:{frame:05.2f} / "), timecode

    video = page.get_by_test_id(video_id)
    page.keyboard.press("Space")
    page.wait_for_function("(v) => !v.paused", arg=video.element_handle())
    page.keyboard.press("Space")
    page.wait_for_function("(v) => v.paused", arg=video.element_handle())
    return seen


def _assert_keys_moved(seen, end_tolerance: float = 0.05) -> None:
    for key, got, expected in seen:
        tolerance = end_tolerance if key == "End" else 1e-3
        assert abs(got - expected) <= tolerance, f"{key}: at {got}, expected {expected} ({seen})"


def _project_data(page) -> dict:
    return page.evaluate("() => JSON.parse(document.getElementById('project-data').textContent)")


def test_both_editors_share_the_transport_bar_and_the_keys(page, browser_clip):
    signup(page, unique_username("editors"), PASSWORD)
    project_id = create_project(page, "One house", "9:16")
    upload_clip(page, browser_clip)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )

    # Framing: SVG icons, the help line, the keys.
    _assert_transport_bar(page, "play-toggle")
    duration = page.get_by_test_id("framing-video").evaluate("(v) => v.duration")
    framing = _step_through_keys(page, "framing-video", CLIP_FPS, duration)
    _assert_keys_moved(framing)
    expect(page.get_by_test_id("play-toggle")).to_have_attribute("aria-label", "Play")
    screenshot(page, "editors-framing")

    # The working video, then overlay mode.
    page.get_by_test_id("export-button").click()
    expect(page.get_by_test_id("export-progress")).to_be_visible()
    wait_for_progress(page, "export-progress", timeout=90)
    page.get_by_test_id("open-overlay").click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/overlay/$"))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=overlay-video]').readyState >= 1"
    )

    _assert_transport_bar(page, "overlay-play")
    working = _project_data(page)["working_video"]
    overlay = _step_through_keys(page, "overlay-video", working["fps"] or 30, working["duration"])
    _assert_keys_moved(overlay)
    # The same presses, the same moves (in frames of each video).
    assert [k for k, _, _ in framing] == [k for k, _, _ in overlay]

    # A spotlight at the playhead: the preview dims outside it by the shared constant.
    # (From the start: a region begins at the playhead rounded to the millisecond, which
    # may be just after it.)
    page.keyboard.press("Home")
    page.get_by_test_id("add-region").click()
    expect(page.get_by_test_id("region-item")).to_have_count(1)
    expect(page.get_by_test_id("region-ellipse")).to_be_visible()
    alphas = page.get_by_test_id("overlay-preview").evaluate(
        """(canvas) => {
            const ctx = canvas.getContext("2d");
            const at = (x, y) => ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data[3];
            return {corner: at(2, 2), centre: at(canvas.width / 2, canvas.height / 2)};
        }"""
    )
    dim_alpha = round(255 * (1 - EFFECTS["dim_outside"]["factor"]))
    assert abs(alphas["corner"] - dim_alpha) <= 2, (alphas, dim_alpha)
    assert alphas["centre"] == 0, alphas
    screenshot(page, "editors-overlay")

    # Escape, the overlay page's own key, goes through the same guards: it deselects.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("region-ellipse")).to_have_count(0)
    expect(page.get_by_test_id("region-item")).not_to_have_attribute("aria-current", "true")
