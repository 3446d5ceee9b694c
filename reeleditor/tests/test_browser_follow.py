"""Follow the play in the framing editor: propose, see the path, accept, undo.

A generated clip of a passing game (reframing/synthetic_play.py, a panning camera) is
analysed by the real follow_play job on the live server. The proposal is drawn over the
video and changes nothing until "Accept"; accepting makes its keyframes the clip's
(autosaved), and one undo takes them back off (autosaved too).

Screenshots: ``test-artifacts/screenshots/follow-1-proposal.png`` (the path and the
proposed window over the video) and ``follow-2-accepted.png``.
"""

import pytest
from playwright.sync_api import expect

from reeleditor.tests.browser import (
    api,
    create_project,
    poll,
    screenshot,
    signup,
    unique_username,
    upload_clip,
)
from reframing import synthetic_play

PASSWORD = "a-long-enough-pw-123"


@pytest.fixture(scope="module")
def play_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("follow-clip") / "passing-play.mp4"
    scene = synthetic_play.Scene(seconds=5.0, width=640, height=360, pan=True, seed=31)
    synthetic_play.write(scene, path)
    return path


def _clip(page, project_id):
    return api(page, "GET", f"/api/projects/{project_id}")["json"]["clips"][0]


def _seek(page, seconds):
    page.evaluate(
        """(t) => { const v = document.querySelector('[data-testid=framing-video]');
                    v.currentTime = t; v.dispatchEvent(new Event('timeupdate')); }""",
        seconds,
    )


def _window_x(page):
    return float(page.locator(".follow-window").get_attribute("x"))


def test_propose_see_the_path_accept_and_undo(page, play_clip):
    signup(page, unique_username("follow"), PASSWORD)
    project_id = create_project(page, "Follow the play", "9:16")
    upload_clip(page, play_clip)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )
    assert _clip(page, project_id)["crop_keyframes"] == []

    page.get_by_test_id("follow-play").click()
    status = page.get_by_test_id("follow-status")
    expect(status).to_contain_text("Proposal:", timeout=60_000)
    overlay = page.get_by_test_id("follow-overlay")
    expect(overlay).to_be_visible()
    count = int(overlay.get_attribute("data-keyframes"))
    assert 2 <= count <= 6, count
    expect(page.locator(".follow-keyframes circle")).to_have_count(count)
    points = page.locator(".follow-path").get_attribute("points").split()
    assert len(points) >= 40  # 0.1 s steps over ~5 s
    # Nothing is the clip's yet: no keyframe chips, nothing saved.
    expect(page.get_by_test_id("keyframe-item")).to_have_count(0)
    assert _clip(page, project_id)["crop_keyframes"] == []

    # The proposed window moves with the playhead (the ball is passed across the pitch).
    xs = []
    for t in (0.0, 1.5, 3.0, 4.5):
        _seek(page, t)
        page.wait_for_timeout(150)
        xs.append(_window_x(page))
    assert max(xs) - min(xs) > 20, xs
    screenshot(page, "follow-1-proposal")

    page.get_by_test_id("follow-accept").click()
    expect(overlay).to_be_hidden()
    expect(page.get_by_test_id("keyframe-item")).to_have_count(count)
    expect(page.get_by_test_id("save-status")).to_contain_text("Saved", timeout=10_000)
    saved = poll(
        lambda: _clip(page, project_id)["crop_keyframes"] or None,
        message="the accepted keyframes to be saved",
    )
    assert len(saved) == count
    assert all(k["height"] == 360 for k in saved)
    screenshot(page, "follow-2-accepted")

    # One undo takes the whole proposal back off, and that is saved too.
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("keyframe-item")).to_have_count(0)
    poll(
        lambda: _clip(page, project_id)["crop_keyframes"] == [],
        message="the undo to be saved",
    )
    page.get_by_test_id("redo").click()
    expect(page.get_by_test_id("keyframe-item")).to_have_count(count)


def test_a_discarded_proposal_changes_nothing(page, play_clip):
    signup(page, unique_username("discard"), PASSWORD)
    project_id = create_project(page, "Discard", "9:16")
    upload_clip(page, play_clip)
    page.get_by_test_id("follow-play").click()
    expect(page.get_by_test_id("follow-status")).to_contain_text("Proposal:", timeout=60_000)
    page.get_by_test_id("follow-discard").click()
    expect(page.get_by_test_id("follow-overlay")).to_be_hidden()
    expect(page.get_by_test_id("follow-panel")).to_be_hidden()
    expect(page.get_by_test_id("keyframe-item")).to_have_count(0)
    expect(page.get_by_test_id("undo")).to_be_disabled()
    assert _clip(page, project_id)["crop_keyframes"] == []
