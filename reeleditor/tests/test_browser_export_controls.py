"""The export panel's controls in a real browser: cancelling a running export, and the
AI upscaling option (shown only when a model is configured, with its time estimate).

The cancel and upscale tests use a server of their own (``controls_server``, started
only when one of them runs): mock exports slowed to about 70 ms a frame
(``EXPORT_MOCK_FRAME_DELAY``), so that an export is still running when the test clicks
cancel, and ``UPSCALE_MODEL_PATH`` pointing at a tiny real model file (a 2x Real-ESRGAN
Compact, 8 features, random weights) written by the test.

Screenshots: ``test-artifacts/screenshots/export-controls-*.png``.
"""

import json
import re

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
    video_plays,
    wait_for_progress,
)

PASSWORD = "a-long-enough-pw-123"
FRAME_DELAY = 0.07  # seconds added to each of a mock export's 60 frames: about 4 s


@pytest.fixture(scope="module")
def controls_server(start_live_server, tmp_path_factory):
    import torch

    from exports.tests.test_upscale import compact

    model = tmp_path_factory.mktemp("upscale-model") / "compact-x2.pth"
    torch.save(compact(2).state_dict(), model)
    live = start_live_server(
        "controls",
        UPSCALE_MODEL_PATH=str(model),
        EXPORT_MOCK_FRAME_DELAY=str(FRAME_DELAY),
    )
    yield live
    live.stop()


def _project_with_clip(page, clip, name):
    signup(page, unique_username("controls"), PASSWORD)
    project_id = create_project(page, name, "9:16")
    upload_clip(page, clip)
    return project_id


def _working_video_id(page, project_id):
    response = api(page, "GET", f"/api/projects/{project_id}/working-video")
    assert response["status"] == 200, response
    return response["json"]["id"]


def _assert_plays(page, test_id):
    result = video_plays(page, page.get_by_test_id(test_id))
    assert result["error"] is None and result["ready"] >= 2, result
    assert result["end"] > result["start"], f"{test_id} did not play: {result}"
    return result


def test_cancelling_a_running_export_keeps_the_previous_working_video(
    page_for, controls_server, browser_clip
):
    page = page_for(controls_server)
    project_id = _project_with_clip(page, browser_clip, "Cancel me")

    # A first export makes the working video the cancelled one must not replace.
    page.get_by_test_id("export-button").click()
    expect(page.get_by_test_id("export-cancel")).to_be_visible()
    wait_for_progress(page, "export-progress", timeout=60)
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")
    expect(page.get_by_test_id("export-cancel")).to_be_hidden()
    first_id = _working_video_id(page, project_id)
    working = page.get_by_test_id("working-video")
    expect(working).to_have_attribute("src", re.compile(r".+"))
    first_src = working.get_attribute("src")

    # The second: cancelled while it renders.
    page.get_by_test_id("export-button").click()
    expect(page.get_by_test_id("export-button")).to_be_disabled()
    cancel = page.get_by_test_id("export-cancel")
    expect(cancel).to_be_visible()
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=export-progress]')"
        ".getAttribute('aria-valuenow')) > 0"
    )
    screenshot(page, "export-controls-1-running")
    (job,) = [
        j
        for j in api(page, "GET", f"/api/projects/{project_id}/exports")["json"]["exports"]
        if j["status"] in ("pending", "processing")
    ]
    cancel.click()
    expect(page.get_by_test_id("export-phase")).to_have_text("Export cancelled", timeout=20_000)
    expect(cancel).to_be_hidden()
    expect(page.get_by_test_id("export-button")).to_be_enabled()
    expect(page.get_by_test_id("export-error")).to_be_hidden()
    progress = int(page.get_by_test_id("export-progress").get_attribute("aria-valuenow"))
    assert progress < 90, f"the export got to {progress}% before it stopped"
    screenshot(page, "export-controls-2-cancelled")

    # The server agrees, and the previous working video is still the project's, shown
    # on the page and playing.
    ended = api(page, "GET", f"/api/exports/{job['job_id']}")["json"]
    assert (ended["status"], ended["phase"]) == ("cancelled", "cancelled"), ended
    assert "working_video_id" not in ended
    assert _working_video_id(page, project_id) == first_id
    assert working.get_attribute("src") == first_src
    _assert_plays(page, "working-video")
    working.scroll_into_view_if_needed()
    screenshot(page, "export-controls-2b-previous-video-kept")

    # After a reload too.
    page.reload()
    expect(page.get_by_test_id("export-cancel")).to_be_hidden()
    assert page.get_by_test_id("working-video").get_attribute("src") == first_src
    _assert_plays(page, "working-video")

    # The final export (overlay mode) has the same button: a final video, then a
    # cancelled export, and the final video is still the one the gallery offers.
    page.goto(f"/projects/{project_id}/overlay/")
    final_button = page.get_by_test_id("final-export-button")
    final_button.click()
    wait_for_progress(page, "final-export-progress", timeout=60)
    expect(page.get_by_test_id("open-gallery")).to_be_visible()
    finals = api(page, "GET", f"/api/projects/{project_id}/final-videos")["json"]["final_videos"]
    assert len(finals) == 1, finals

    final_button.click()
    expect(page.get_by_test_id("open-gallery")).to_be_hidden()
    page.get_by_test_id("export-cancel").click()
    expect(page.get_by_test_id("export-phase")).to_have_text("Export cancelled", timeout=20_000)
    expect(final_button).to_be_enabled()
    expect(page.get_by_test_id("open-gallery")).to_be_visible()  # the previous one
    screenshot(page, "export-controls-2c-final-cancelled")
    after = api(page, "GET", f"/api/projects/{project_id}/final-videos")["json"]["final_videos"]
    assert after == finals
    assert _working_video_id(page, project_id) == first_id


def test_without_a_model_the_panel_says_why_upscaling_is_unavailable(page, browser_clip):
    _project_with_clip(page, browser_clip, "No model")
    line = page.get_by_test_id("upscale-unavailable")
    expect(line).to_be_visible()
    expect(line).to_have_text("AI upscaling is not configured (UPSCALE_MODEL_PATH is not set).")
    expect(page.get_by_test_id("upscale-option")).to_be_hidden()
    screenshot(page, "export-controls-3-unavailable")


def test_with_a_model_the_panel_offers_upscaling_with_an_estimate(
    page_for, controls_server, browser_clip
):
    page = page_for(controls_server)
    project_id = _project_with_clip(page, browser_clip, "Upscaled")

    checkbox = page.get_by_test_id("upscale-option")
    # The first answer loads the model in the server (torch, spandrel): allow for it.
    expect(checkbox).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("upscale-unavailable")).to_be_hidden()
    expect(page.locator("#upscale-label")).to_have_text(
        "AI upscaling (2x RealESRGAN Compact, compact-x2.pth)"
    )
    estimate = page.get_by_test_id("upscale-estimate")
    # The 2 s, 30 fps clip: 60 frames; the estimate follows the upload.
    expect(estimate).to_contain_text("for 60 frames", timeout=30_000)
    expect(estimate).to_contain_text("An estimate: the model's speed on one test window")
    options = api(page, "GET", f"/api/exports/options?project={project_id}")["json"]
    assert options["estimate"]["basis"] == "measured_here", options
    assert options["estimate"]["frames"] == 60
    page.locator(".export-panel").scroll_into_view_if_needed()
    screenshot(page, "export-controls-4-upscale-offered")

    checkbox.check()
    with page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith(f"/api/projects/{project_id}/exports")
    ) as started:
        page.get_by_test_id("export-button").click()
    assert json.loads(started.value.post_data) == {"kind": "framing", "upscale": True}
    response = started.value.response()
    assert response.status == 202
    job_id = response.json()["job_id"]
    wait_for_progress(page, "export-progress", timeout=60)
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")

    # The job asked for upscaling, and with a broker it would go to the upscale queue.
    code = (
        "import json, os\n"
        "from exports.models import ExportJob\n"
        "from exports.queueing import celery_queue_for\n"
        "job = ExportJob.objects.get(pk=os.environ['BT_JOB'])\n"
        "print('job', json.dumps({'upscale': job.params['upscale'],"
        " 'queue': celery_queue_for(job.pk), 'status': job.status}))\n"
    )
    shell = controls_server.manage("shell", "-c", code, extra_env={"BT_JOB": job_id})
    line = next(x for x in shell.stdout.splitlines() if x.startswith("job "))
    assert json.loads(line[4:]) == {"upscale": True, "queue": "upscale", "status": "complete"}

    # Unticked, the next export is a plain one.
    checkbox.uncheck()
    with page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith(f"/api/projects/{project_id}/exports")
    ) as again:
        page.get_by_test_id("export-button").click()
    assert json.loads(again.value.post_data) == {"kind": "framing"}
    plain_id = again.value.response().json()["job_id"]
    assert plain_id != job_id
    poll(
        lambda: api(page, "GET", f"/api/exports/{plain_id}")["json"]["status"] == "complete",
        timeout=60,
        message="the plain export to complete",
    )
    expect(page.get_by_test_id("export-phase")).to_have_text("Export complete · saved")
