"""The header's sync badge tells the truth when the object store fails, and recovers.

The store fails for real: the S3 proxy in front of moto refuses connections, so the
server's push of the user's snapshot fails through boto3's whole request path.
"""

from playwright.sync_api import expect

from reeleditor.tests.browser import (
    api,
    create_project,
    record_sync_badge,
    screenshot,
    signup,
    sync_badge_history,
    sync_status,
    unique_username,
    wait_synced,
)

FAILED_TEXT = "Sync failed — click to retry"


def test_badge_shows_a_failed_sync_and_retries_it(page, s3_proxy):
    signup(page, unique_username("badge"), "a-long-enough-pw-123")
    badge = page.locator("#sync-badge")
    expect(badge).to_have_attribute("data-status", "ok")
    expect(badge).not_to_contain_text("failed")
    before = wait_synced(page)

    # An edit while the store is down: kept locally, and the badge says so.
    s3_proxy.fail()
    create_project(page, "Written while the store is down", "16:9")
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("data-status", "failed")
    expect(badge).to_have_text(FAILED_TEXT)
    failing = sync_status(page)
    assert failing["status"] == "failed" and failing["dirty"], failing
    assert failing["version"] == before["version"], failing

    # The page's own writes (opening the project records it) are over, failed too:
    # otherwise one of them could commit everything once the store is back, and the
    # badge would clear before the click this test is about.
    page.wait_for_load_state("networkidle")
    expect(badge).to_have_attribute("data-status", "failed")

    # The store is back: one click commits the edit, and the badge goes quiet.
    s3_proxy.recover()
    with page.expect_response("**/api/sync/retry") as retry:
        badge.click()
    assert retry.value.status == 200, retry.value.status
    expect(badge).to_have_attribute("data-status", "ok", timeout=10_000)
    expect(badge).not_to_contain_text("failed")
    after = wait_synced(page)
    assert after["version"] > before["version"], (before, after)
    screenshot(page, "sync-badge-recovered")

    # And the edit is there, committed.
    names = [p["name"] for p in api(page, "GET", "/api/projects")["json"]["projects"]]
    assert names == ["Written while the store is down"], names


def test_badge_stays_failed_while_the_store_is_still_down(page, s3_proxy):
    signup(page, unique_username("badge"), "a-long-enough-pw-123")
    badge = page.locator("#sync-badge")
    s3_proxy.fail()
    create_project(page, "Still down", "1:1")
    expect(badge).to_have_text(FAILED_TEXT)

    # A retry that cannot reach the store must not pretend it worked, even for a moment.
    record_sync_badge(page)
    page.reload()
    expect(badge).to_have_text(FAILED_TEXT)
    screenshot(page, "sync-badge-failed")
    clicked_at = page.evaluate("Date.now()")
    with page.expect_response("**/api/sync/retry") as retry:
        badge.click()
    assert retry.value.status == 503, retry.value.status
    expect(badge).to_have_attribute("data-status", "failed", timeout=10_000)
    expect(badge).to_have_text(FAILED_TEXT)
    claimed_ok = [
        state
        for state in sync_badge_history(page)
        if state["t"] >= clicked_at and state["status"] == "ok"
    ]
    assert not claimed_ok, f"the badge said ok while the store was down: {claimed_ok}"
    status = sync_status(page)
    assert status["status"] == "failed" and status["dirty"], status
