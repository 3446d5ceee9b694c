"""The whole product in a real browser: sign up, frame, export, overlay, final export.

Runs against the live daphne server (``reeleditor/tests/browser/``): WebSocket
progress, per-user databases, snapshots committed to S3 (moto, through a proxy), media
served from the bucket by presigned redirects. The mock server renders small videos
quickly; one test runs the real export pipeline.

Screenshots of each screen land in ``test-artifacts/screenshots/flow-*.png``.
"""

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from reeleditor.tests.browser import (
    api,
    create_project,
    drag_by,
    poll,
    probe_mp4,
    record_sync_badge,
    screenshot,
    signup,
    sync_badge_history,
    unique_username,
    upload_clip,
    video_plays,
    wait_for_progress,
    watch_progress,
)

PASSWORD = "a-long-enough-pw-123"


def _set_time(page, seconds: float) -> None:
    """Move the framing editor to ``seconds`` with its scrubber (input type=range)."""
    scrubber = page.get_by_test_id("scrubber")
    scrubber.fill(str(seconds))
    page.wait_for_function(
        "(t) => Math.abs(document.querySelector('[data-testid=framing-video]').currentTime - t)"
        " < 0.1",
        arg=seconds,
    )


def _clip(page, project_id) -> dict:
    project = api(page, "GET", f"/api/projects/{project_id}")
    assert project["status"] == 200, project
    (clip,) = project["json"]["clips"]
    return clip


def _assert_plays(page, test_id: str) -> dict:
    result = video_plays(page, page.get_by_test_id(test_id))
    assert result["error"] is None, result
    assert result["ready"] >= 2, result
    assert result["end"] > result["start"], f"{test_id} did not play: {result}"
    return result


def test_full_flow_from_signup_to_download(page, browser_clip, tmp_path):
    record_sync_badge(page)
    signup(page, unique_username("flow"), PASSWORD)

    # Projects: create a 9:16 reel.
    expect(page.get_by_test_id("new-project-name")).to_be_visible()
    screenshot(page, "flow-1-projects-empty")
    project_id = create_project(page, "Saturday final", "9:16")

    # Overlay mode needs a working video first.
    page.goto(f"/projects/{project_id}/overlay/")
    expect(page.get_by_test_id("export-required")).to_be_visible()
    expect(page.get_by_test_id("overlay-video")).to_have_count(0)
    page.goto(f"/projects/{project_id}/")

    # Framing: upload a clip, move the crop at two times -> two keyframes, autosaved.
    upload_clip(page, browser_clip)
    video = page.get_by_test_id("framing-video")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )
    expect(video).to_be_visible()
    crop = page.get_by_test_id("crop-rect")
    expect(crop).to_be_visible()
    expect(page.get_by_test_id("crop-handle-se")).to_be_visible()

    _set_time(page, 0.5)
    drag_by(page, crop, -60, 0)
    _set_time(page, 1.5)
    drag_by(page, crop, 120, 0)
    expect(page.get_by_test_id("keyframe-item")).to_have_count(2)
    expect(page.get_by_test_id("save-status")).to_contain_text("Saved", timeout=10_000)

    keyframes = _clip(page, project_id)["crop_keyframes"]
    assert [round(k["time"], 1) for k in keyframes] == [0.5, 1.5], keyframes
    assert keyframes[0]["x"] < keyframes[1]["x"], f"the crop did not follow the drags: {keyframes}"
    screenshot(page, "flow-2-framing-editor")

    # The play button plays the clip.
    _set_time(page, 0.0)
    page.get_by_test_id("play-toggle").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').currentTime > 0.2"
    )
    page.get_by_test_id("play-toggle").click()
    page.wait_for_function("() => document.querySelector('[data-testid=framing-video]').paused")

    # Framing export: progress over the WebSocket to 100, then overlay mode.
    page.get_by_test_id("export-button").click()
    expect(page.get_by_test_id("export-progress")).to_be_visible()
    watch_progress(page, "export-progress")
    screenshot(page, "flow-3-export-progress")
    values = wait_for_progress(page, "export-progress", timeout=90)
    assert values == sorted(values), f"progress went back: {values}"
    expect(page.get_by_test_id("export-error")).to_be_hidden()
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")
    screenshot(page, "flow-4-export-complete")
    detail = api(page, "GET", f"/api/projects/{project_id}")["json"]
    assert detail["has_working_video"], detail
    working = api(page, "GET", f"/api/projects/{project_id}/working-video")
    assert working["status"] == 200 and working["json"]["id"], working

    page.get_by_test_id("open-overlay").click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/overlay/$"))
    expect(page.get_by_test_id("export-required")).to_be_hidden()
    _assert_plays(page, "overlay-video")

    # Overlay: one highlight region, saved.
    page.get_by_test_id("add-region").click()
    expect(page.get_by_test_id("region-item")).to_have_count(1)
    page.get_by_test_id("region-effect").first.select_option("dim_outside")
    expect(page.get_by_test_id("region-color").first).to_be_visible()
    expect(page.get_by_test_id("region-ellipse").first).to_be_visible()
    regions = poll(
        lambda: api(page, "GET", f"/api/projects/{project_id}/highlights")["json"]["regions"],
        message="the highlight region to be saved",
    )
    assert len(regions) == 1 and regions[0]["effect"] == "dim_outside", regions
    screenshot(page, "flow-5-overlay-editor")

    # Final export, then the gallery and the download.
    page.get_by_test_id("final-export-button").click()
    expect(page.get_by_test_id("final-export-progress")).to_be_visible()
    watch_progress(page, "final-export-progress")
    values = wait_for_progress(page, "final-export-progress", timeout=90)
    assert values == sorted(values), f"final progress went back: {values}"

    page.get_by_test_id("open-gallery").click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/gallery/$"))
    expect(page.get_by_test_id("gallery-item")).to_have_count(1)
    screenshot(page, "flow-6-gallery")
    link = page.get_by_test_id("download-link").first
    href = link.get_attribute("href")
    try:
        with page.expect_download(timeout=15_000) as download_info:
            link.click()
    except PlaywrightTimeout:
        raise AssertionError(
            f"clicking download-link ({href}) started no download; the page went to {page.url}"
        ) from None
    download = download_info.value
    saved = tmp_path / "reel.mp4"
    download.save_as(saved)
    assert download.suggested_filename.endswith(".mp4"), download.suggested_filename
    info = probe_mp4(saved)
    assert info["codec"] == "h264" and info["frames"] > 0, info
    # 9:16 (mock exports render at a quarter of 1080x1920).
    assert info["width"] * 16 == info["height"] * 9, info

    # Back on the projects page, the project says it is done.
    page.goto("/")
    card = page.get_by_test_id("project-card").filter(has_text="Saturday final")
    expect(card).to_have_count(1)
    screenshot(page, "flow-7-projects")
    listed = api(page, "GET", "/api/projects")["json"]["projects"]
    assert listed[0]["has_working_video"] and listed[0]["has_final_video"], listed

    # The sync badge never claimed a failure, on any page of the whole flow.
    history = sync_badge_history(page)
    assert history, "the sync badge was never seen"
    assert {state["path"] for state in history} >= {"/", f"/projects/{project_id}/"}
    bad = [
        state
        for state in history
        if state["status"] in ("failed", "conflict") or "failed" in state["text"].lower()
    ]
    assert not bad, f"the sync badge reported a problem: {bad}"


def test_real_export_of_a_two_second_clip(page_for, real_server, browser_clip):
    page = page_for(real_server)
    signup(page, unique_username("real"), PASSWORD)
    project_id = create_project(page, "Real render", "9:16")
    upload_clip(page, browser_clip)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=framing-video]').readyState >= 1"
    )

    page.get_by_test_id("export-button").click()
    expect(page.get_by_test_id("export-progress")).to_be_visible()
    watch_progress(page, "export-progress")
    values = wait_for_progress(page, "export-progress", timeout=120)
    assert values == sorted(values), f"progress went back: {values}"
    expect(page.get_by_test_id("export-error")).to_be_hidden()
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")
    screenshot(page, "flow-real-export-complete")

    working = api(page, "GET", f"/api/projects/{project_id}/working-video")
    assert working["status"] == 200, working
    assert (working["json"]["width"], working["json"]["height"]) == (1080, 1920), working
    assert abs(working["json"]["duration"] - 2.0) < 0.2, working

    page.get_by_test_id("open-overlay").click()
    page.wait_for_url(re.compile(rf"/projects/{project_id}/overlay/$"))
    _assert_plays(page, "overlay-video")
