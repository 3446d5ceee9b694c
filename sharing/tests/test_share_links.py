"""Share links of final videos: made by the owner, opened by anyone with the link, gone
on revoke or expiry on every route, never a way to anything else.

Real requests through the test client, real media files in the test's folder (and on
moto's S3 for the presigned redirect).
"""

import json
import math
from collections import Counter
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from projects.tests.helpers import add_final_video, body, create_project, store_media
from sharing import links
from sharing.models import ShareLink

pytestmark = pytest.mark.django_db

VIDEO = bytes(range(256)) * 64  # 16 KiB, every offset distinguishable
POSTER = b"\xff\xd8\xff" + b"P" * 500


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    """The limiter counts in the process's cache: each test starts with none counted."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def final(alice, alice_client, local_store):
    project = create_project(alice_client, "Cup final 2-1")
    video = add_final_video(
        alice,
        project["id"],
        file=store_media(alice, "final", VIDEO),
        poster=store_media(alice, "thumbs", POSTER, extension="jpg"),
    )
    return project, video


def share(client, project, video, **body_):
    url = f"/api/projects/{project['id']}/final-videos/{video.id}/share-links"
    return client.post(url, json.dumps(body_), content_type="application/json")


def path_of(link_url: str) -> str:
    return link_url.split("testserver", 1)[1]


def public_routes(link_url):
    page = path_of(link_url)
    return [page, page + "video.mp4", page + "poster.jpg"]


def test_a_link_opens_the_video_page_without_an_account(alice_client, final):
    project, video = final
    made = share(alice_client, project, video)
    assert made.status_code == 201, made.content
    url = made.json()["url"]

    anonymous = Client()
    page = anonymous.get(path_of(url))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Cup final 2-1" in html
    assert f'<meta property="og:image" content="{url}poster.jpg">' in html
    assert f'<meta property="og:video" content="{url}video.mp4">' in html
    assert page["Referrer-Policy"] == "no-referrer"
    assert "noindex" in page["X-Robots-Tag"]
    assert body(anonymous.get(path_of(url) + "poster.jpg")) == POSTER
    whole = anonymous.get(path_of(url) + "video.mp4")
    assert whole.status_code == 200 and body(whole) == VIDEO


def test_the_video_streams_with_range(alice_client, final):
    project, video = final
    url = share(alice_client, project, video).json()["url"]

    part = Client().get(path_of(url) + "video.mp4", HTTP_RANGE="bytes=1000-1999")

    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 1000-1999/{len(VIDEO)}"
    assert body(part) == VIDEO[1000:2000]


def test_a_revoked_link_is_gone_on_every_route(alice_client, final):
    project, video = final
    made = share(alice_client, project, video).json()

    revoked = alice_client.delete(f"/api/share-links/{made['id']}")

    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    anonymous = Client()
    for route in public_routes(made["url"]):
        assert anonymous.get(route).status_code == 404, route
    assert "does not work" in anonymous.get(path_of(made["url"])).content.decode()
    # The owner's list says so.
    url = f"/api/projects/{project['id']}/final-videos/{video.id}/share-links"
    assert [link["status"] for link in alice_client.get(url).json()["links"]] == ["revoked"]


def test_an_expired_link_is_gone_on_every_route(alice_client, final):
    project, video = final
    made = share(alice_client, project, video, expires_in_days=7).json()
    assert made["expires_at"] is not None
    anonymous = Client()
    assert all(anonymous.get(r).status_code == 200 for r in public_routes(made["url"]))

    ShareLink.objects.filter(pk=made["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    for route in public_routes(made["url"]):
        assert anonymous.get(route).status_code == 404, route


@pytest.mark.parametrize("days", [0, 366, "7", True, 1.5])
def test_a_bad_expiry_is_refused(alice_client, final, days):
    project, video = final
    response = share(alice_client, project, video, expires_in_days=days)
    assert response.status_code == 400 and response.json()["code"] == "invalid_expiry"
    assert not ShareLink.objects.exists()


def test_tokens_are_long_random_and_never_repeat():
    tokens = [links.new_token() for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)
    assert all(len(t) >= 43 for t in tokens)  # 32 random bytes, base64url
    # Every character of the alphabet about equally often: no structure to guess from.
    counts = Counter("".join(tokens))
    expected = sum(counts.values()) / 64
    assert len(counts) == 64
    assert max(abs(c - expected) for c in counts.values()) < 6 * math.sqrt(expected)


@pytest.mark.parametrize("token", ["x", "a" * 43, "a" * 65, "..%2F..%2Fmedia"])
def test_an_unknown_token_finds_nothing(token, final):
    for route in (f"/s/{token}/", f"/s/{token}/video.mp4", f"/s/{token}/poster.jpg"):
        assert Client().get(route).status_code == 404


def test_only_the_shared_video_is_reachable(alice_client, alice, final):
    """The link names its two files; the owner's other media stay owner-only."""
    project, video = final
    other = store_media(alice, "final", b"another video")
    url = share(alice_client, project, video).json()["url"]
    anonymous = Client()

    assert anonymous.get(f"/media/{other}").status_code in (302, 401, 404)
    assert anonymous.get(path_of(url) + other).status_code == 404
    assert anonymous.get(path_of(url) + "../../media/" + other).status_code == 404


def test_another_user_can_neither_make_list_nor_revoke_links(alice_client, bob_client, final):
    project, video = final
    made = share(alice_client, project, video).json()
    url = f"/api/projects/{project['id']}/final-videos/{video.id}/share-links"

    assert bob_client.get(url).status_code == 404
    assert bob_client.post(url, "{}", content_type="application/json").status_code == 404
    assert bob_client.delete(f"/api/share-links/{made['id']}").status_code == 404
    assert ShareLink.objects.get(pk=made["id"]).status == "live"


def test_deleting_the_project_revokes_its_links(alice_client, final):
    project, video = final
    made = share(alice_client, project, video).json()

    assert alice_client.delete(f"/api/projects/{project['id']}").status_code == 204

    assert Client().get(path_of(made["url"])).status_code == 404


def test_the_public_routes_are_rate_limited_per_address(alice_client, final, settings):
    project, video = final
    url = share(alice_client, project, video).json()["url"]
    settings.SHARE_RATE_LIMIT_PER_MINUTE = 5
    anonymous = Client()

    answers = [anonymous.get(path_of(url)).status_code for _ in range(7)]

    assert answers == [200] * 5 + [429] * 2
    other_address = Client(REMOTE_ADDR="10.0.0.9")
    assert other_address.get(path_of(url)).status_code == 200


def test_links_per_video_are_limited(alice_client, final, settings):
    settings.MAX_SHARE_LINKS_PER_VIDEO = 2
    project, video = final
    assert [share(alice_client, project, video).status_code for _ in range(3)] == [201, 201, 400]


def test_on_s3_the_video_is_a_short_lived_redirect(alice, alice_client, s3_media):
    project = create_project(alice_client, "On S3")
    video = add_final_video(alice, project["id"], file=store_media(alice, "final", VIDEO))
    url = share(alice_client, project, video).json()["url"]

    answer = Client().get(path_of(url) + "video.mp4")

    assert answer.status_code == 302
    assert "Signature=" in answer["Location"] and "Expires=" in answer["Location"]
    assert f"/users/{alice.pk}/final/" in answer["Location"]
