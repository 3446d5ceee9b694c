"""The History pages in Chromium: edits make versions, an old one is previewed
read-only and restored as a new version (with its clip's file), and the restore is
undone.

Like every browser test, it fails on a Content-Security-Policy violation.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from reeleditor.tests.browser import (
    api,
    create_project,
    screenshot,
    signup,
    unique_username,
    upload_clip,
    wait_synced,
)

PASSWORD = "a-long-enough-pw-123"


def test_restore_an_old_version_from_the_history_then_undo_it(page, browser_clip):
    signup(page, unique_username("historian"), PASSWORD)
    cup = create_project(page, "Cup final")
    upload_clip(page, browser_clip)
    [clip] = api(page, "GET", f"/api/projects/{cup}")["json"]["clips"]
    crop = [{"time": t, "x": x, "y": 0, "width": 202.5, "height": 360} for t, x in ((0, 0), (1, 9))]
    edit = api(page, "PATCH", f"/api/projects/{cup}/clips/{clip['id']}", {"crop_keyframes": crop})
    assert edit["status"] == 200, edit
    create_project(page, "Replay")
    wait_synced(page)
    assert api(page, "DELETE", f"/api/projects/{cup}")["status"] == 204
    page.goto("/")
    expect(page.get_by_test_id("project-card")).to_have_count(1)
    wait_synced(page)

    page.get_by_test_id("nav-history").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    rows = page.get_by_test_id("history-row")
    expect(rows.first).to_have_attribute("data-projects", "1")
    expect(rows.first).to_contain_text("current")
    expect(rows.first).to_contain_text("-1 project")
    expect(rows.first).to_contain_text("-2 keyframes")
    screenshot(page, "history-list", full_page=True)

    # The newest version that still had both projects: just before the deletion.
    both = page.locator('[data-testid="history-row"][data-projects="2"][data-clips="1"]').first
    version = both.get_attribute("data-version")
    both.get_by_test_id("history-view").click()
    expect(page.get_by_role("heading", name=f"Version {version}")).to_be_visible()
    preview = page.get_by_test_id("history-preview")
    expect(preview.get_by_test_id("history-project")).to_have_count(2)
    expect(preview).to_contain_text("Cup final")
    expect(preview).to_contain_text("1 clip")
    expect(preview).to_contain_text("2 crop keyframes")
    expect(page.locator("input:not([type=hidden]), textarea, select")).to_have_count(0)
    screenshot(page, "history-preview", full_page=True)

    page.get_by_test_id("history-restore").click()
    expect(page.locator(".message.success")).to_contain_text(f"Restored version {version} as")
    expect(rows.first).to_contain_text(f"restored from {version}")
    expect(rows.first).to_have_attribute("data-projects", "2")
    expect(page.get_by_test_id("history-undo")).to_be_visible()
    screenshot(page, "history-restored", full_page=True)

    page.get_by_role("link", name="Projects").click()
    cards = page.get_by_test_id("project-card")
    expect(cards).to_have_count(2)
    restored = cards.filter(has_text="Cup final")
    expect(restored.get_by_test_id("project-clip-count")).to_have_text("1 clip")
    thumbnail = restored.locator("video").get_attribute("src").split("#")[0]
    assert page.request.get(thumbnail).status == 200  # the clip's file was kept
    screenshot(page, "history-restored-projects")

    page.get_by_test_id("nav-history").click()
    page.get_by_test_id("history-undo").click()
    expect(page.locator(".message.success")).to_be_visible()
    expect(rows.first).to_have_attribute("data-projects", "1")
    page.get_by_role("link", name="Projects").click()
    expect(page.get_by_test_id("project-card")).to_have_count(1)
    expect(page.get_by_test_id("project-card")).to_contain_text("Replay")


def test_history_times_are_shown_in_the_readers_own_time_zone(page_for, server):
    # The server writes UTC; a coach in Auckland (UTC+13 in December) reads local time.
    page = page_for(server, timezone_id="Pacific/Auckland", locale="en-GB")
    signup(page, unique_username("kiwi"), PASSWORD)
    create_project(page, "Harbour cup")
    wait_synced(page)
    page.get_by_test_id("nav-history").click()
    when = page.get_by_test_id("history-row").first.locator("time")
    stamp = datetime.fromisoformat(when.get_attribute("datetime"))
    local = stamp.astimezone(ZoneInfo("Pacific/Auckland"))
    expect(when).to_contain_text(local.strftime("%H:%M:%S"))
    expect(when).to_contain_text(str(local.year))
    # The server's own rendering stays at hand, as the tooltip.
    assert stamp.astimezone(UTC).strftime("%H:%M:%S") in when.get_attribute("title")
