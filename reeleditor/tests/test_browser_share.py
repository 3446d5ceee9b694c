"""A share link in a real browser: made in the gallery, opened by someone with no account
(a fresh browser context, no cookies), and refused once the owner revokes it.

The owner's steps are the product's own (sign up, frame, export, overlay, final export,
gallery, "Make a share link", "Revoke"); the visitor's are a new context on the same
live server. The server stores media on S3 (moto, through a proxy), so the link's video
and poster answer with a short-lived presigned redirect that the browser follows.

Screenshots: ``test-artifacts/screenshots/share-*.png``.
"""

import re

from playwright.sync_api import expect

from reeleditor.tests.browser import (
    create_project,
    make_final_video,
    screenshot,
    signup,
    unique_username,
    video_plays,
)

PASSWORD = "a-long-enough-pw-123"
TITLE = "Derby day share"
OTHER_PROJECT = "Private scouting notes"

# The poster, loaded as an image by the visitor's page: its natural size once decoded.
_POSTER_SIZE = """async (url) => {
    const img = new Image();
    img.src = url;
    try { await img.decode(); } catch (e) { return {error: String(e), width: 0, height: 0}; }
    return {error: null, width: img.naturalWidth, height: img.naturalHeight};
}"""


def _meta(page, prop: str) -> str | None:
    locator = page.locator(f'meta[property="{prop}"]')
    return locator.get_attribute("content") if locator.count() else None


def _final_video(page, browser_clip) -> int:
    """A project with a clip, its working video and one final video; returns its id."""
    return make_final_video(page, browser_clip, TITLE)


def test_a_share_link_plays_without_an_account_and_is_refused_after_revoke(
    page, page_for, server, browser_clip
):
    owner = unique_username("sharer")
    signup(page, owner, PASSWORD)
    create_project(page, OTHER_PROJECT, "16:9")  # the owner's other data, never shown
    page.goto("/")
    _final_video(page, browser_clip)

    # The owner makes a 7-day link in the gallery and reads it off the page.
    share = page.get_by_test_id("share").first
    share.get_by_test_id("share-expiry").select_option("7")
    share.get_by_test_id("share-create").click()
    item = share.get_by_test_id("share-link")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-status", "live")
    expect(item).to_contain_text("until ")
    url = item.get_by_test_id("share-url").input_value()
    assert re.fullmatch(rf"{re.escape(server.url)}/s/[A-Za-z0-9_-]{{43,}}/", url), url
    screenshot(page, "share-1-gallery-with-link", full_page=True)

    # A visitor: a new browser context, no cookies, no account.
    visitor = page_for(server)
    assert visitor.context.cookies() == []
    answer = visitor.goto(url)
    assert answer.status == 200
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in answer.headers["x-robots-tag"]
    expect(visitor.get_by_test_id("share-title")).to_have_text(TITLE)
    # The 7-day expiry, with its time zone (a visitor can be anywhere).
    expect(visitor.locator(".share-page")).to_contain_text(re.compile(r"works until .+ UTC"))
    video = visitor.get_by_test_id("share-video")
    expect(video).to_be_visible()
    played = video_plays(visitor, video)
    assert played["error"] is None and played["ready"] >= 2, played
    assert played["end"] > played["start"], f"the shared video did not play: {played}"

    # Open Graph: absolute URLs of this link's own routes, each answering.
    video_url, poster_url = url + "video.mp4", url + "poster.jpg"
    assert _meta(visitor, "og:title") == TITLE
    assert _meta(visitor, "og:url") == url
    assert _meta(visitor, "og:video") == video_url
    assert _meta(visitor, "og:video:type") == "video/mp4"
    assert _meta(visitor, "og:image") == poster_url
    assert video.get_attribute("poster") == poster_url
    assert video.get_attribute("src") == video_url

    poster = visitor.request.get(poster_url)
    assert poster.status == 200, poster.status
    assert poster.headers["content-type"] == "image/jpeg", poster.headers
    assert poster.body()[:3] == b"\xff\xd8\xff"
    size = visitor.evaluate(_POSTER_SIZE, poster_url)
    assert size["error"] is None and size["width"] > 0 and size["height"] > 0, size
    # 9:16, like the video (a still of it).
    assert abs(size["width"] / size["height"] - 9 / 16) < 0.02, size

    # The video: a short-lived presigned redirect, then HTTP Range from the bucket.
    hop = visitor.request.get(video_url, max_redirects=0)
    assert hop.status == 302, hop.status
    location = hop.headers["location"]
    assert "Signature=" in location and "Expires=" in location, location
    assert not location.startswith(server.url), location
    part = visitor.request.get(video_url, headers={"Range": "bytes=0-99"})
    assert part.status == 206, part.status
    assert part.headers["content-range"].startswith("bytes 0-99/"), part.headers
    assert len(part.body()) == 100 and part.body()[4:8] == b"ftyp"

    # Nothing of the owner's: no signed-in chrome, no other project, no name.
    html = visitor.content()
    for secret in (OTHER_PROJECT, owner, "Sign out", "/api/", "csrfmiddlewaretoken"):
        assert secret not in html, secret
    expect(visitor.locator(".topnav, .topbar, #sync-badge")).to_have_count(0)
    # And the visitor is still nobody: the app itself asks for a sign-in.
    visitor.goto("/")
    assert "/accounts/login/" in visitor.url, visitor.url
    assert "sessionid" not in {cookie["name"] for cookie in visitor.context.cookies()}

    visitor.goto(url)
    expect(visitor.get_by_test_id("share-video")).to_be_visible()
    visitor.wait_for_function(
        "() => document.querySelector('[data-testid=share-video]').readyState >= 2"
    )
    screenshot(visitor, "share-2-shared-page-fresh-context", full_page=True)

    # The owner revokes it in the gallery: gone on every route at once.
    item.get_by_test_id("share-revoke").click()
    expect(item).to_have_attribute("data-status", "revoked")
    expect(item.get_by_test_id("share-revoke")).to_have_count(0)
    screenshot(page, "share-3-gallery-revoked", full_page=True)

    gone = visitor.reload()
    assert gone.status == 404
    expect(visitor.get_by_test_id("share-gone")).to_be_visible()
    expect(visitor.get_by_test_id("share-video")).to_have_count(0)
    assert _meta(visitor, "og:image") is None and _meta(visitor, "og:video") is None
    assert TITLE not in visitor.content()
    for route in (url, video_url, poster_url):
        refused = visitor.request.get(route, max_redirects=0)
        assert refused.status == 404, (route, refused.status)
    screenshot(visitor, "share-4-gone-page", full_page=True)
