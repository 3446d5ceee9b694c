"""Undo and redo in both editors (``static/js/undo.js``): buttons and keys, each step
autosaved.

Framing: a crop drag is one step (recorded on release, not on each move); undo brings
the keyframe's previous position back (the box and the chips), redo the later one, and
the server ends up with what the page shows. A hundred steps are kept: a hundred and
five arrow-key nudges of the crop box undo to the fifth. Overlay: a deleted highlight
comes back with Ctrl+Z, saved; Ctrl+Z in a text field is the field's own.

Screenshots: ``test-artifacts/screenshots/undo-*.png``.
"""

from playwright.sync_api import expect

from reeleditor.tests.browser import (
    api,
    create_project,
    drag_by,
    screenshot,
    signup,
    unique_username,
    upload_clip,
    wait_for_progress,
)

PASSWORD = "a-long-enough-pw-123"
CLIP_WIDTH = 640  # the browser_clip fixture's
UNDO_LIMIT = 100  # static/js/undo.js


def _set_time(page, seconds: float) -> None:
    page.get_by_test_id("scrubber").fill(str(seconds))
    page.wait_for_function(
        "(t) => Math.abs(document.querySelector('[data-testid=framing-video]').currentTime - t)"
        " < 0.1",
        arg=seconds,
    )


def _open_framing(page, name: str, browser_clip) -> int:
    signup(page, unique_username("undo"), PASSWORD)
    project_id = create_project(page, name, "9:16")
    upload_clip(page, browser_clip)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )
    expect(page.get_by_test_id("crop-rect")).to_be_visible()
    return project_id


def _crop_x(page) -> float:
    """The crop box's left edge, in source pixels (from its style: a % of the frame)."""
    left = page.get_by_test_id("crop-rect").evaluate("(box) => parseFloat(box.style.left)")
    return left / 100 * CLIP_WIDTH


def _chip_times(page) -> list[float]:
    return page.get_by_test_id("keyframe-item").evaluate_all(
        "(chips) => chips.map((c) => Number(c.dataset.time))"
    )


def _wait_saved(page) -> None:
    # An undo marks the page edited at once ("Unsaved changes"), so this waits for its save.
    expect(page.get_by_test_id("save-status")).to_have_attribute("data-kind", "ok", timeout=10_000)


def _server_keyframes(page, project_id) -> list[dict]:
    project = api(page, "GET", f"/api/projects/{project_id}")
    assert project["status"] == 200, project
    (clip,) = project["json"]["clips"]
    return clip["crop_keyframes"]


def _expect_ellipse_x(page, x: float) -> None:
    page.wait_for_function(
        "(x) => { const e = document.querySelector('[data-testid=region-ellipse]');"
        " return e && Math.abs(Number(e.dataset.x) - x) < 0.01; }",
        arg=x,
    )


def _expect_buttons(page, *, undo: bool, redo: bool) -> None:
    for test_id, enabled in (("undo", undo), ("redo", redo)):
        button = page.get_by_test_id(test_id)
        if enabled:
            expect(button).to_be_enabled()
        else:
            expect(button).to_be_disabled()


def test_framing_undo_and_redo_a_keyframe_drag(page, browser_clip):
    project_id = _open_framing(page, "Undo framing", browser_clip)
    crop = page.get_by_test_id("crop-rect")
    _expect_buttons(page, undo=False, redo=False)
    expect(page.get_by_test_id("undo")).to_have_attribute(
        "title",
        "Undo (Ctrl+Z): "
        + ("keyframes, trim and slow motion. Deleting or reordering clips is not undone."),
    )
    centred = _crop_x(page)

    # Two drags at the same time: a keyframe, then the same keyframe moved.
    _set_time(page, 0.5)
    drag_by(page, crop, -60, 0)
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    first = _crop_x(page)
    drag_by(page, crop, 120, 0)
    second = _crop_x(page)
    assert first < centred < second, (first, centred, second)
    assert len(_chip_times(page)) == 1
    _expect_buttons(page, undo=True, redo=False)
    _wait_saved(page)
    screenshot(page, "undo-1-framing-after-two-drags")

    # Undo: the keyframe goes back where the first drag put it (one step per drag).
    page.get_by_test_id("undo").click()
    assert abs(_crop_x(page) - first) < 0.5, (_crop_x(page), first)
    assert [round(t, 1) for t in _chip_times(page)] == [0.5]
    _expect_buttons(page, undo=True, redo=True)
    _wait_saved(page)
    (saved,) = _server_keyframes(page, project_id)
    assert abs(saved["x"] - first) < 0.5, (saved, first)
    screenshot(page, "undo-2-framing-undone-move")

    # Redo: the move again; undo twice: no keyframe, the box centred, nothing to undo.
    page.get_by_test_id("redo").click()
    assert abs(_crop_x(page) - second) < 0.5, (_crop_x(page), second)
    _expect_buttons(page, undo=True, redo=False)
    page.get_by_test_id("undo").click()
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("keyframe-item")).to_have_count(0)
    assert abs(_crop_x(page) - centred) < 0.5, (_crop_x(page), centred)
    _expect_buttons(page, undo=False, redo=True)
    _wait_saved(page)
    assert _server_keyframes(page, project_id) == []
    screenshot(page, "undo-3-framing-no-keyframes")

    # The keys: Ctrl+Shift+Z and Ctrl+Y redo, Ctrl+Z undoes (wherever the focus is,
    # but a text field).
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Control+Shift+Z")
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    assert abs(_crop_x(page) - first) < 0.5
    page.keyboard.press("Control+y")
    assert abs(_crop_x(page) - second) < 0.5
    page.keyboard.press("Control+z")
    assert abs(_crop_x(page) - first) < 0.5
    _expect_buttons(page, undo=True, redo=True)

    # A new edit (trim) clears the redo; undoing it brings the trim back, saved.
    trim = page.get_by_test_id("trim-start")
    trim.fill("0.4")
    trim.dispatch_event("change")
    _expect_buttons(page, undo=True, redo=False)
    _wait_saved(page)
    project = api(page, "GET", f"/api/projects/{project_id}")["json"]
    assert project["clips"][0]["trim"]["start"] == 0.4, project["clips"][0]
    page.keyboard.press("Control+z")
    expect(page.get_by_test_id("trim-start")).to_have_value("0")
    _wait_saved(page)
    (clip,) = api(page, "GET", f"/api/projects/{project_id}")["json"]["clips"]
    assert clip["trim"] is None, clip
    assert len(clip["crop_keyframes"]) == 1 and abs(clip["crop_keyframes"][0]["x"] - first) < 0.5
    screenshot(page, "undo-4-framing-keys")


def test_framing_keeps_a_hundred_steps(page, browser_clip):
    project_id = _open_framing(page, "Undo steps", browser_clip)
    crop = page.get_by_test_id("crop-rect")
    crop.focus()
    # Each arrow press on the crop box (written on key up) is a step: 60 right, 45 left.
    positions = []
    for key in ["ArrowRight"] * 60 + ["ArrowLeft"] * 45:
        page.keyboard.press(key)
        positions.append(_crop_x(page))
    assert len(set(round(x, 1) for x in positions[:60])) == 60, positions[:60]
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    screenshot(page, "undo-5-framing-105-nudges")

    # The last hundred undo, one at a time, to the position after the fifth press.
    for step in range(UNDO_LIMIT):
        page.keyboard.press("Control+z")
        expected = positions[len(positions) - 2 - step]
        assert abs(_crop_x(page) - expected) < 0.1, (step, _crop_x(page), expected)
    _expect_buttons(page, undo=False, redo=True)
    page.keyboard.press("Control+z")  # nothing left: nothing happens
    assert abs(_crop_x(page) - positions[4]) < 0.1
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    _wait_saved(page)
    (saved,) = _server_keyframes(page, project_id)
    assert abs(saved["x"] - positions[4]) < 0.1, (saved, positions[4])
    screenshot(page, "undo-6-framing-100-undone")

    # And all of them redo.
    for _ in range(UNDO_LIMIT):
        page.keyboard.press("Control+Shift+Z")
    assert abs(_crop_x(page) - positions[-1]) < 0.1
    _expect_buttons(page, undo=True, redo=False)
    _wait_saved(page)
    (saved,) = _server_keyframes(page, project_id)
    assert abs(saved["x"] - positions[-1]) < 0.1, (saved, positions[-1])


def test_overlay_undo_brings_a_deleted_highlight_back(page, browser_clip):
    project_id = _open_framing(page, "Undo overlay", browser_clip)
    page.get_by_test_id("export-button").click()
    expect(page.get_by_test_id("export-progress")).to_be_visible()
    wait_for_progress(page, "export-progress", timeout=90)
    page.get_by_test_id("open-overlay").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=overlay-video]').readyState >= 1"
    )
    highlights = f"/api/projects/{project_id}/highlights"
    _expect_buttons(page, undo=False, redo=False)

    # A highlight, its ellipse dragged (one step), then deleted.
    page.keyboard.press("Home")
    page.get_by_test_id("add-region").click()
    expect(page.get_by_test_id("region-item")).to_have_count(1)
    ellipse = page.get_by_test_id("region-ellipse")
    expect(ellipse).to_be_visible()
    centre_x = float(ellipse.get_attribute("data-x"))
    drag_by(page, ellipse, 80, 0)
    moved_x = float(ellipse.get_attribute("data-x"))
    assert moved_x > centre_x + 20, (centre_x, moved_x)
    _wait_saved(page)
    screenshot(page, "undo-7-overlay-highlight-moved")
    page.get_by_test_id("region-delete").click()
    expect(page.get_by_test_id("region-item")).to_have_count(0)
    _wait_saved(page)
    assert api(page, "GET", highlights)["json"]["regions"] == []

    # Ctrl+Z: back, selected, with its moved ellipse; saved.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Control+z")
    expect(page.get_by_test_id("region-item")).to_have_count(1)
    expect(page.get_by_test_id("region-item")).to_have_attribute("aria-current", "true")
    _expect_ellipse_x(page, moved_x)
    _wait_saved(page)
    (region,) = api(page, "GET", highlights)["json"]["regions"]
    assert abs(region["keyframes"][0]["x"] - moved_x) < 0.01, region
    screenshot(page, "undo-8-overlay-deleted-highlight-back")

    # In a text field Ctrl+Z is the field's: the highlight stays.
    page.get_by_test_id("region-start").focus()
    page.keyboard.press("Control+z")
    expect(page.get_by_test_id("region-item")).to_have_count(1)

    # The button: the drag undone (the ellipse centred), then the highlight gone.
    page.get_by_test_id("undo").click()
    _expect_ellipse_x(page, centre_x)
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("region-item")).to_have_count(0)
    _expect_buttons(page, undo=False, redo=True)
    _wait_saved(page)
    assert api(page, "GET", highlights)["json"]["regions"] == []
    page.get_by_test_id("redo").click()
    expect(page.get_by_test_id("region-item")).to_have_count(1)
    _wait_saved(page)
    assert len(api(page, "GET", highlights)["json"]["regions"]) == 1
    screenshot(page, "undo-9-overlay-undone-and-redone")


def test_framing_undo_goes_back_across_clips(page, browser_clip):
    project_id = _open_framing(page, "Undo two clips", browser_clip)
    upload_clip(page, browser_clip)  # the second clip, now the one edited
    items = page.get_by_test_id("clip-item")
    expect(items.nth(1)).to_have_attribute("aria-current", "true")

    # Clip 2: a slow-motion segment; clip 1: a keyframe.
    page.get_by_test_id("segment-add").click()
    expect(page.get_by_test_id("segment-item")).to_have_count(1)
    items.nth(0).locator(".clip-select").click()
    expect(items.nth(0)).to_have_attribute("aria-current", "true")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )
    drag_by(page, page.get_by_test_id("crop-rect"), -60, 0)
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    _wait_saved(page)

    # Undo: clip 1's keyframe; undo again: the step was clip 2's, which is selected.
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("keyframe-item")).to_have_count(0)
    expect(items.nth(0)).to_have_attribute("aria-current", "true")
    page.get_by_test_id("undo").click()
    expect(items.nth(1)).to_have_attribute("aria-current", "true")
    expect(page.get_by_test_id("segment-item")).to_have_count(0)
    _expect_buttons(page, undo=False, redo=True)
    _wait_saved(page)
    clips = api(page, "GET", f"/api/projects/{project_id}")["json"]["clips"]
    assert [(c["crop_keyframes"], c["segments"]) for c in clips] == [([], []), ([], [])], clips
    screenshot(page, "undo-10-framing-across-clips")

    # Redo both: the segment on clip 2, then clip 1 selected with its keyframe.
    page.get_by_test_id("redo").click()
    expect(page.get_by_test_id("segment-item")).to_have_count(1)
    page.get_by_test_id("redo").click()
    expect(items.nth(0)).to_have_attribute("aria-current", "true")
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    _wait_saved(page)
    clips = sorted(
        api(page, "GET", f"/api/projects/{project_id}")["json"]["clips"],
        key=lambda c: c["position"],
    )
    assert [(len(c["crop_keyframes"]), len(c["segments"])) for c in clips] == [(1, 0), (0, 1)]
