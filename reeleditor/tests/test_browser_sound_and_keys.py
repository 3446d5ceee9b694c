"""Sound and keys in both editors (static/js/player.js, projects/_transport.html).

- Sound: the editors' videos play the clip's sound, on by default at full volume. The
  mute toggle and the volume slider in the transport bar are one setting for both
  editors, remembered in localStorage and applied on load; M toggles it.
- Slow motion in framing plays silent, as the export's slow motion is (the page says
  so): the video is muted while it plays inside a slow-motion segment, not at 1x.
- Keys: the same in both editors: K adds a keyframe at the playhead, Delete removes
  it, Shift+→ moves one second, ? opens the help sheet (a <dialog>) that lists them all,
  Esc closes it.

Screenshots: ``test-artifacts/screenshots/sound-transport-framing.png``,
``sound-transport-overlay.png``, ``keys-help-framing.png``, ``keys-help-overlay.png``.
"""

import re

import pytest
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
FPS = 30


@pytest.fixture(scope="module")
def sound_clip(tmp_path_factory):
    """A 3-second synthetic clip with its soundtrack (a hum and a whistle), 640x360."""
    from projects.synthetic import write_game_clip

    path = tmp_path_factory.mktemp("sound-clips") / "game-with-sound.mp4"
    write_game_clip(path, width=640, height=360, fps=FPS, seconds=3.0, with_audio=True)
    return path


def _open_framing(page, name: str, clip) -> int:
    signup(page, unique_username("sound"), PASSWORD)
    project_id = create_project(page, name, "16:9")
    upload_clip(page, clip)
    _wait_ready(page, "framing-video")
    return project_id


def _wait_ready(page, video_id: str) -> None:
    page.wait_for_function(
        "(id) => { const v = document.querySelector(`[data-testid=${id}]`);"
        " return v && v.readyState >= 2; }",
        arg=video_id,
    )


def _to_overlay(page, project_id: int) -> None:
    page.get_by_test_id("export-button").click()
    expect(page.get_by_test_id("export-progress")).to_be_visible()
    wait_for_progress(page, "export-progress", timeout=90)
    page.get_by_test_id("open-overlay").click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/overlay/$"))
    _wait_ready(page, "overlay-video")


def _sound(page, video_id: str) -> dict:
    return page.get_by_test_id(video_id).evaluate(
        """(video) => ({
            muted: video.muted,
            volume: Math.round(video.volume * 100) / 100,
            pressed: document.getElementById("mute-toggle").getAttribute("aria-pressed"),
            slider: Number(document.querySelector("[data-testid=volume]").value),
            saved: JSON.parse(localStorage.getItem("reeleditor.sound") || "null"),
        })"""
    )


def _set_volume(page, value: float) -> None:
    page.get_by_test_id("volume").evaluate(
        """(input, value) => {
            input.value = String(value);
            input.dispatchEvent(new Event("input", {bubbles: true}));
        }""",
        value,
    )


def _blur(page) -> None:
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


def _time(page, video_id: str) -> float:
    return page.get_by_test_id(video_id).evaluate("(v) => v.currentTime")


def test_the_sound_setting_is_remembered_and_shared_by_both_editors(page, sound_clip):
    project_id = _open_framing(page, "Sound", sound_clip)

    # On by default, at full volume, with nothing saved yet.
    assert _sound(page, "framing-video") == {
        "muted": False,
        "volume": 1,
        "pressed": "false",
        "slider": 1,
        "saved": None,
    }
    mute = page.get_by_test_id("mute-toggle")
    expect(mute).to_have_attribute("aria-label", "Mute")

    # The toggle and the slider set the video's sound, and it is saved.
    mute.click()
    state = _sound(page, "framing-video")
    assert (state["muted"], state["pressed"]) == (True, "true"), state
    expect(mute).to_have_attribute("aria-label", "Unmute")
    _set_volume(page, 0.35)
    state = _sound(page, "framing-video")
    assert state["volume"] == 0.35 and state["saved"] == {"muted": True, "volume": 0.35}, state
    screenshot(page, "sound-transport-framing")

    # M toggles it too (not while typing in a field).
    _blur(page)
    page.keyboard.press("m")
    assert _sound(page, "framing-video")["muted"] is False
    page.keyboard.press("M")
    assert _sound(page, "framing-video")["muted"] is True

    # Applied on load: after a reload, and in overlay mode.
    page.reload()
    _wait_ready(page, "framing-video")
    state = _sound(page, "framing-video")
    assert (state["muted"], state["pressed"], state["volume"], state["slider"]) == (
        True,
        "true",
        0.35,
        0.35,
    ), state

    _to_overlay(page, project_id)
    state = _sound(page, "overlay-video")
    assert (state["muted"], state["pressed"], state["volume"], state["slider"]) == (
        True,
        "true",
        0.35,
        0.35,
    ), state
    # Unmuted here: the framing editor hears it on its next load.
    page.get_by_test_id("mute-toggle").click()
    assert _sound(page, "overlay-video")["muted"] is False
    screenshot(page, "sound-transport-overlay")
    page.goto(f"/projects/{project_id}/")
    _wait_ready(page, "framing-video")
    state = _sound(page, "framing-video")
    assert (state["muted"], state["volume"]) == (False, 0.35), state


def test_slow_motion_plays_silent_in_framing_as_in_the_export(page, sound_clip):
    _open_framing(page, "Slow sound", sound_clip)
    expect(page.get_by_test_id("slowmo-silent")).to_contain_text(
        "Slow-motion parts are silent in the export and here"
    )

    # A 0.5x segment over 1.0-2.0 s.
    _blur(page)
    page.keyboard.press("Home")
    page.keyboard.press("Shift+ArrowRight")
    page.get_by_test_id("segment-add").click()
    expect(page.get_by_test_id("segment-item")).to_have_count(1)

    # Play from the start (a click: the browser lets sound start from it) and record
    # the video's sound and rate at each frame until it stops at the end.
    _blur(page)
    page.keyboard.press("Home")
    page.get_by_test_id("play-toggle").click()
    samples = page.get_by_test_id("framing-video").evaluate(
        """(video) => new Promise((resolve) => {
            const seen = [];
            const deadline = Date.now() + 15000;
            const tick = () => {
                seen.push({t: video.currentTime, muted: video.muted, rate: video.playbackRate,
                           paused: video.paused});
                if ((video.paused && seen.length > 5) || Date.now() > deadline) resolve(seen);
                else setTimeout(tick, 25);
            };
            tick();
        })"""
    )
    playing = [s for s in samples if not s["paused"]]
    before = [s for s in playing if s["t"] < 0.95]
    inside = [s for s in playing if 1.05 < s["t"] < 1.95]
    after = [s for s in playing if s["t"] > 2.05]
    assert before and inside and after, samples
    assert all(not s["muted"] and s["rate"] == 1 for s in before), before
    assert all(s["muted"] and s["rate"] == 0.5 for s in inside), inside
    assert all(not s["muted"] and s["rate"] == 1 for s in after), after
    # The user's setting is untouched: still sound on.
    assert page.get_by_test_id("mute-toggle").get_attribute("aria-pressed") == "false"


def _check_keys(page, video_id: str, chips_before: int) -> None:
    """K adds a keyframe at the playhead, Delete removes it, Shift+→ moves 1 s."""
    chips = page.get_by_test_id("keyframe-item")
    expect(chips).to_have_count(chips_before)
    _blur(page)
    t0 = _time(page, video_id)
    page.keyboard.press("Shift+ArrowRight")
    assert abs(_time(page, video_id) - (t0 + 1)) < 1e-3
    page.keyboard.press("Shift+ArrowLeft")
    assert abs(_time(page, video_id) - t0) < 1e-3
    for _ in range(9):
        page.keyboard.press("ArrowRight")
    at = round(_time(page, video_id), 3)
    assert abs(at - (t0 + 9 / FPS)) < 1e-3

    page.keyboard.press("k")
    expect(chips).to_have_count(chips_before + 1)
    new = page.locator(f'[data-testid=keyframe-item][data-time="{at}"]')
    if new.count() == 0:  # times are rounded (framing to 0.1 ms, overlay to 1 ms)
        times = [float(c.get_attribute("data-time")) for c in chips.all()]
        assert any(abs(t - at) < 1e-3 for t in times), (times, at)
    else:
        expect(new).to_have_class(re.compile(r"\bselected\b"))
    # K again at the same time updates that keyframe: no second chip.
    page.keyboard.press("K")
    expect(chips).to_have_count(chips_before + 1)

    page.keyboard.press("Delete")
    expect(chips).to_have_count(chips_before)
    page.keyboard.press("k")
    expect(chips).to_have_count(chips_before + 1)
    page.keyboard.press("Backspace")
    expect(chips).to_have_count(chips_before)

    # Not while typing in a field: the volume slider is not one, a number input is.
    page.evaluate(
        """() => {
            const input = document.createElement("input");
            input.type = "number";
            input.id = "typing-here";
            document.body.append(input);
        }"""
    )
    page.locator("#typing-here").focus()
    page.keyboard.press("k")
    expect(chips).to_have_count(chips_before)
    page.evaluate("() => document.getElementById('typing-here').remove()")


def _check_help_sheet(page, name: str, editor_words: str) -> None:
    sheet = page.get_by_test_id("key-help-sheet")
    expect(sheet).to_be_hidden()
    _blur(page)
    page.keyboard.press("?")
    expect(sheet).to_be_visible()
    for words in [
        "Space",
        "One frame back / forward",
        "Shift",
        "One second back / forward",
        "Home",
        "End",
        "K",
        "Delete",
        "Ctrl",
        "Undo",
        "Redo",
        "M",
        "Sound on / off",
        editor_words,
    ]:
        expect(sheet).to_contain_text(words)
    # The player's keys wait while it is open.
    page.keyboard.press("m")
    assert page.get_by_test_id("mute-toggle").get_attribute("aria-pressed") == "false"
    screenshot(page, name)
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    # The button opens it too, and Close closes it.
    page.get_by_test_id("key-help-open").click()
    expect(sheet).to_be_visible()
    page.get_by_test_id("key-help-close").click()
    expect(sheet).to_be_hidden()


def test_the_same_keys_in_both_editors_and_a_help_sheet(page, sound_clip):
    project_id = _open_framing(page, "Keys", sound_clip)
    _blur(page)
    page.keyboard.press("Home")
    _check_keys(page, "framing-video", chips_before=0)
    _check_help_sheet(page, "keys-help-framing", "the crop box")

    _to_overlay(page, project_id)
    _blur(page)
    page.keyboard.press("Home")
    page.get_by_test_id("add-region").click()
    expect(page.get_by_test_id("region-ellipse")).to_be_visible()
    # A new highlight has one keyframe, at its start (here: the playhead).
    _check_keys(page, "overlay-video", chips_before=1)
    # Its only keyframe stays: Delete on it does nothing.
    page.keyboard.press("Home")
    page.keyboard.press("Delete")
    expect(page.get_by_test_id("keyframe-item")).to_have_count(1)
    _check_help_sheet(page, "keys-help-overlay", "selected highlight")
