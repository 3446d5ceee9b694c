"""The final video's export settings in overlay mode: resolution, quality and the title
card, saved on the project as they change, previewed, and in the exported video.

The server renders in mock mode (a quarter-size working video), so 720p does not shrink
it further (the render never scales up; exports/tests/test_final_presets.py proves the
scaling); the title card is rendered for real.

Screenshots: ``test-artifacts/screenshots/presets-1-settings.png`` (the settings with the
card's preview) and ``presets-2-card-frame.png`` (the exported video's first frame).
"""

import cv2
import numpy as np
from playwright.sync_api import expect

from reeleditor.tests.browser import (
    api,
    create_project,
    poll,
    screenshot,
    signup,
    unique_username,
    upload_clip,
    wait_for_progress,
)
from reeleditor.tests.browser.pages import ARTIFACTS

PASSWORD = "a-long-enough-pw-123"
PRIMARY = "#7a1020"  # a maroon the synthetic clip (green grass) never shows


def _export_working_video(page, browser_clip) -> int:
    project_id = create_project(page, "Presets reel", "9:16")
    upload_clip(page, browser_clip)
    page.get_by_test_id("export-button").click()
    wait_for_progress(page, "export-progress", timeout=90)
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")
    return project_id


def _first_frame(path):
    import av

    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_settings_are_saved_previewed_and_the_card_opens_the_video(page, browser_clip, tmp_path):
    signup(page, unique_username("presets"), PASSWORD)
    project_id = _export_working_video(page, browser_clip)
    page.goto(f"/projects/{project_id}/overlay/")

    settings = page.get_by_test_id("final-presets")
    summary = page.get_by_test_id("presets-summary")
    expect(summary).to_have_text("1080p · standard quality · no title card")
    settings.locator("summary").click()
    expect(page.get_by_test_id("card-player")).to_be_disabled()  # until the card is on

    page.get_by_test_id("preset-resolution").select_option("720p")
    page.get_by_test_id("preset-quality").select_option("small")
    page.get_by_test_id("card-enabled").check()
    # Nothing to draw yet: the page asks for a name instead of saving an empty card.
    expect(page.get_by_test_id("presets-status")).to_contain_text("player name or a team")
    page.get_by_test_id("card-player").fill("Maya Okafor #7")
    page.get_by_test_id("card-team").fill("Riverside U14")
    page.get_by_test_id("card-date").fill("2026-11-28")
    page.get_by_test_id("card-primary").evaluate(
        """(input, value) => {
            input.value = value;
            input.dispatchEvent(new Event("change", {bubbles: true}));
        }""",
        PRIMARY,
    )
    expect(page.get_by_test_id("presets-status")).to_contain_text("Saved", timeout=10_000)
    expect(summary).to_have_text("720p · smaller file · title card")

    saved = poll(
        lambda: (lambda p: p if p["title_card"]["primary"] == PRIMARY else None)(
            api(page, "GET", f"/api/projects/{project_id}")["json"]
        ),
        message="the title card's colour to be saved",
    )
    assert (saved["final_resolution"], saved["final_quality"]) == ("720p", "small")
    assert saved["title_card"] == {
        "enabled": True,
        "player": "Maya Okafor #7",
        "team": "Riverside U14",
        "date": "2026-11-28",
        "primary": PRIMARY,
        "accent": "#ffc72c",
    }

    # The preview is the server's drawing of the saved card, in the video's shape.
    preview = page.get_by_test_id("title-card-preview")
    expect(preview).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=title-card-preview]');"
        " return i.complete && i.naturalWidth > 0 && i.src.includes('r=' ); }"
    )
    shape = preview.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
    assert shape[0] * 16 == shape[1] * 9, shape
    preview.scroll_into_view_if_needed()
    screenshot(page, "presets-1-settings")

    # After a reload the page shows what was saved.
    page.reload()
    page.get_by_test_id("final-presets").locator("summary").click()
    expect(page.get_by_test_id("preset-resolution")).to_have_value("720p")
    expect(page.get_by_test_id("card-player")).to_have_value("Maya Okafor #7")
    expect(page.get_by_test_id("card-enabled")).to_be_checked()

    # The final export starts with the card, then the working video.
    page.get_by_test_id("final-export-button").click()
    wait_for_progress(page, "final-export-progress", timeout=90)
    videos = api(page, "GET", f"/api/projects/{project_id}/final-videos")["json"]["final_videos"]
    working = api(page, "GET", f"/api/projects/{project_id}/working-video")["json"]
    final = videos[0]
    assert final["duration"] >= working["duration"] + 2.4, (final, working)
    body = page.request.get(final["url"])
    assert body.ok, body.status
    path = tmp_path / "final.mp4"
    path.write_bytes(body.body())
    first = _first_frame(path)
    red, green, blue = (int(PRIMARY[i : i + 2], 16) for i in (1, 3, 5))
    # The card's top rows are its background colour (shaded a little towards the bottom).
    top = first[: first.shape[0] // 10].reshape(-1, 3).mean(axis=0)
    assert np.abs(top - [red, green, blue]).max() < 24, top

    # The exported first frame, for people to look at next to the settings.
    cv2.imwrite(str(ARTIFACTS / "screenshots" / "presets-2-card-frame.png"), first[:, :, ::-1])
