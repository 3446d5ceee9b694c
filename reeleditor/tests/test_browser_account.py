"""The account page in Chromium: export my data (progress, the download, once) and
delete my account (the password asked, signed out, and kept by signing in again).

Like every browser test, each fails on a Content-Security-Policy violation.
"""

import json
import re
import zipfile

from playwright.sync_api import expect

from reeleditor.tests.browser import (
    create_project,
    login,
    screenshot,
    signup,
    unique_username,
    upload_clip,
)

PASSWORD = "a-long-enough-pw-123"


def test_export_my_data_builds_a_zip_that_downloads_once(page, browser_clip, tmp_path):
    signup(page, unique_username("exporter"), PASSWORD)
    create_project(page, "Cup final")
    upload_clip(page, browser_clip)

    page.goto("/")
    page.locator("a.user").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_role("button", name="Export my data").click()
    link = page.locator(".data-export-download")
    expect(link).to_be_visible(timeout=30_000)
    expect(page.locator(".data-export-message").first).to_have_text("Ready")
    screenshot(page, "account-data-export-ready")

    with page.expect_download() as download_info:
        link.click()
    saved = tmp_path / "export.zip"
    download_info.value.save_as(saved)
    archive = zipfile.ZipFile(saved)
    manifest = json.loads(archive.read("projects.json"))
    [project] = manifest["projects"]
    assert project["name"] == "Cup final"
    [clip] = project["clips"]
    assert archive.read(clip["file"]) == browser_clip.read_bytes()

    expect(link).to_have_count(0)  # downloadable once
    page.reload()
    expect(page.locator(".data-export").first).to_have_attribute("data-status", "downloaded")
    expect(page.locator(".data-export-download")).to_have_count(0)


def test_delete_my_account_asks_the_password_and_signing_in_again_keeps_it(page):
    username = unique_username("leaver")
    signup(page, username, PASSWORD)
    create_project(page, "Still mine")

    page.goto("/accounts/")
    page.get_by_role("link", name="Delete my account…").click()
    expect(page.get_by_role("heading", name="Delete your account")).to_be_visible()
    page.get_by_label("Your password").fill("not-it")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator(".form-error")).to_have_text("That is not your password.")
    screenshot(page, "account-delete-wrong-password")

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Your account is deleted")).to_be_visible()
    screenshot(page, "account-deleted")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))

    login(page, username, PASSWORD)
    expect(page.locator(".message")).to_contain_text("Welcome back")
    expect(page.get_by_text("Still mine")).to_be_visible()
