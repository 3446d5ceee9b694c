"""Smoke test of the browser infrastructure: sign up, create a project, look at it.

It works with the server-rendered projects page and with the editor's (test ids), so
it keeps checking the infrastructure (daphne, S3 proxy, Chromium) while the UI changes.
"""

import re

from playwright.sync_api import expect

from reeleditor.tests.browser import api, login, screenshot, signup, unique_username, wait_synced


def test_signup_create_project_and_screenshot(page):
    username = unique_username("smoke")
    signup(page, username, "a-long-enough-pw-123")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("header")).to_contain_text(username)

    name_input = page.get_by_test_id("new-project-name").or_(page.locator("input[name=name]"))
    aspect = page.get_by_test_id("new-project-aspect").or_(
        page.locator("select[name=aspect_ratio]")
    )
    submit = page.get_by_test_id("new-project-submit").or_(
        page.get_by_role("button", name="New project")
    )
    name_input.fill("Smoke reel")
    aspect.select_option("16:9")
    submit.click()
    expect(page).to_have_url(re.compile(r"/projects/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Smoke reel")
    screenshot(page, "smoke-project")

    # The write was committed to the object store (through the proxy) before success.
    status = wait_synced(page)
    assert status["version"] >= 1, status
    projects = api(page, "GET", "/api/projects")["json"]
    assert [p["name"] for p in projects.get("projects", projects)] == ["Smoke reel"]


def test_make_user_creates_a_staff_user_who_can_sign_in(page, server, make_user):
    username = unique_username("staff")
    user_id = make_user(server, username, "staff-pw-123", staff=True)
    assert user_id > 0
    login(page, username, "staff-pw-123")
    page.goto("/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
