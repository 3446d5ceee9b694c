"""Share links of final videos: made by the owner, opened by anyone with the link, gone
on revoke or expiry on every route, never a way to anything else.

Real requests through the test client, real media files in the test's folder (and on
moto's S3 for the presigned redirect).
"""

import json
import math
import re
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


# --- Tokens, routes and the link's own files: what the security review asked for -------


TOKEN_RE = r"[A-Za-z0-9_-]{43}"


def token_of(link_url: str) -> str:
    return path_of(link_url).split("/")[2]


def test_each_link_gets_its_own_random_token_of_256_bits(alice_client, final):
    """Tokens made through the API (not only ``new_token``): 43 base64url characters,
    different for every link of the same video, and the whole of the stored secret."""
    project, video = final
    made = [share(alice_client, project, video).json() for _ in range(5)]
    tokens = [token_of(link["url"]) for link in made]

    assert all(re.fullmatch(TOKEN_RE, token) for token in tokens), tokens
    assert len(set(tokens)) == len(tokens)
    stored = {link.pk: link.token for link in ShareLink.objects.all()}
    assert [stored[link["id"]] for link in made] == tokens


def test_a_near_miss_of_a_token_finds_nothing(alice_client, final):
    """Only the exact token opens: no prefix, no case-folding, no padding."""
    project, video = final
    url = share(alice_client, project, video).json()["url"]
    token = token_of(url)
    near = {
        token[:-1],
        token[:20],
        token + "A",
        token.swapcase(),
        token + "=",
        f" {token}",
        f"{token}%20",
        f"{token}%00",
    } - {token}
    anonymous = Client()
    assert anonymous.get(f"/s/{token}/").status_code == 200
    for guess in near:
        for route in (f"/s/{guess}/", f"/s/{guess}/video.mp4", f"/s/{guess}/poster.jpg"):
            assert anonymous.get(route).status_code == 404, route


def test_a_token_reaches_only_its_own_links_video(
    alice, alice_client, bob, bob_client, local_store
):
    """Two users' links: each token serves exactly its own video and poster bytes, and no
    route of one link names a file of the other."""
    alices = create_project(alice_client, "Alice's reel")
    bobs = create_project(bob_client, "Bob's reel")
    a_video = add_final_video(
        alice,
        alices["id"],
        file=store_media(alice, "final", b"A" * 3000),
        poster=store_media(alice, "thumbs", b"\xff\xd8\xffA", extension="jpg"),
    )
    b_video = add_final_video(
        bob,
        bobs["id"],
        file=store_media(bob, "final", b"B" * 3000),
        poster=store_media(bob, "thumbs", b"\xff\xd8\xffB", extension="jpg"),
    )
    a_url = share(alice_client, alices, a_video).json()["url"]
    b_url = share(bob_client, bobs, b_video).json()["url"]
    anonymous = Client()

    assert body(anonymous.get(path_of(a_url) + "video.mp4")) == b"A" * 3000
    assert body(anonymous.get(path_of(b_url) + "video.mp4")) == b"B" * 3000
    assert body(anonymous.get(path_of(a_url) + "poster.jpg")) == b"\xff\xd8\xffA"
    a_page = anonymous.get(path_of(a_url)).content.decode()
    assert "Bob" not in a_page and token_of(b_url) not in a_page
    assert a_video.file not in a_page and a_video.poster not in a_page  # no storage names
    # Bob's files through Alice's token, by name or by path tricks: nothing.
    a_path = path_of(a_url)
    for trick in (
        b_video.file,
        b_video.poster,
        f"video.mp4?file={b_video.file}",
        f"../{token_of(b_url)}/video.mp4",
        f"%2e%2e/{token_of(b_url)}/video.mp4",
        f"..%2F{token_of(b_url)}%2Fvideo.mp4",
        f"video.mp4/../../{token_of(b_url)}/video.mp4",
        "../../media/" + b_video.file,
    ):
        answer = anonymous.get(a_path + trick)
        assert answer.status_code == 404 or body(answer) == b"A" * 3000, trick
        assert b"B" * 100 not in body(answer), trick


def test_a_link_whose_file_is_not_its_owners_serves_nothing(alice, alice_client, bob, final):
    """Defence in depth: even a link row naming another user's file (it cannot be made so
    through the API) is refused by ``media.serve``'s owner check."""
    project, video = final
    made = share(alice_client, project, video).json()
    bobs_file = store_media(bob, "final", b"B" * 3000)
    bobs_poster = store_media(bob, "thumbs", b"\xff\xd8\xffB", extension="jpg")
    ShareLink.objects.filter(pk=made["id"]).update(file=bobs_file, poster=bobs_poster)

    anonymous = Client()
    assert anonymous.get(path_of(made["url"]) + "video.mp4").status_code == 404
    assert anonymous.get(path_of(made["url"]) + "poster.jpg").status_code == 404
    for name in ("../../etc/passwd", f"users/{alice.pk}/../{bob.pk}/final/x.mp4", "/etc/passwd"):
        ShareLink.objects.filter(pk=made["id"]).update(file=name)
        assert anonymous.get(path_of(made["url"]) + "video.mp4").status_code == 404, name


def test_the_shared_files_stay_owner_only_on_the_media_route(alice_client, final):
    """The link opens its files through /s/<token>/ only: their own media URLs still need
    the owner's session."""
    project, video = final
    share(alice_client, project, video)
    anonymous = Client()
    for name in (video.file, video.poster):
        assert anonymous.get(f"/media/{name}").status_code in (302, 401, 404), name
        assert alice_client.get(f"/media/{name}").status_code == 200, name


def _gone_on_every_route(made):
    """Page, video and poster answer 404 to GET, HEAD and a Range request alike."""
    anonymous = Client()
    for route in public_routes(made["url"]):
        assert anonymous.get(route).status_code == 404, route
        assert anonymous.head(route).status_code == 404, route
        assert anonymous.get(route, HTTP_RANGE="bytes=0-99").status_code == 404, route
    page = anonymous.get(path_of(made["url"]))
    html = page.content.decode()
    assert "does not work" in html and "Cup final" not in html
    assert "og:video" not in html and "og:image" not in html


def test_revoke_and_expiry_hold_for_head_and_range_requests_too(alice_client, final):
    project, video = final
    revoked = share(alice_client, project, video).json()
    expired = share(alice_client, project, video, expires_in_days=1).json()
    alice_client.delete(f"/api/share-links/{revoked['id']}")
    ShareLink.objects.filter(pk=expired["id"]).update(expires_at=timezone.now())  # == now

    _gone_on_every_route(revoked)
    _gone_on_every_route(expired)
    assert ShareLink.objects.get(pk=expired["id"]).status == "expired"


def test_revoking_one_link_leaves_the_videos_other_links_working(alice_client, final):
    project, video = final
    first = share(alice_client, project, video).json()
    second = share(alice_client, project, video).json()

    alice_client.delete(f"/api/share-links/{first['id']}")

    anonymous = Client()
    assert [anonymous.get(r).status_code for r in public_routes(first["url"])] == [404] * 3
    assert [anonymous.get(r).status_code for r in public_routes(second["url"])] == [200] * 3


def test_a_revoked_link_stays_revoked(alice_client, final):
    """Revoking twice keeps the first time; nothing (in the API) brings a link back."""
    project, video = final
    made = share(alice_client, project, video).json()
    first = alice_client.delete(f"/api/share-links/{made['id']}").json()["revoked_at"]
    again = alice_client.delete(f"/api/share-links/{made['id']}")
    assert again.status_code == 200 and again.json()["revoked_at"] == first
    assert Client().get(path_of(made["url"])).status_code == 404


def test_unknown_revoked_and_expired_tokens_look_the_same(alice_client, final):
    """No oracle: a guesser cannot tell a once-real token from one that never was."""
    project, video = final
    revoked = share(alice_client, project, video).json()
    expired = share(alice_client, project, video, expires_in_days=1).json()
    alice_client.delete(f"/api/share-links/{revoked['id']}")
    ShareLink.objects.filter(pk=expired["id"]).update(expires_at=timezone.now())
    unknown = f"/s/{links.new_token()}/"
    anonymous = Client()

    for suffix in ("", "video.mp4", "poster.jpg"):
        answers = [
            anonymous.get(route + suffix)
            for route in (unknown, path_of(revoked["url"]), path_of(expired["url"]))
        ]
        assert {a.status_code for a in answers} == {404}, suffix
        assert len({body(a) for a in answers}) == 1, suffix


def test_on_s3_a_revoked_link_redirects_nowhere(alice, alice_client, s3_media):
    project = create_project(alice_client, "On S3")
    video = add_final_video(
        alice,
        project["id"],
        file=store_media(alice, "final", VIDEO),
        poster=store_media(alice, "thumbs", POSTER, extension="jpg"),
    )
    made = share(alice_client, project, video).json()
    anonymous = Client()
    assert anonymous.get(path_of(made["url"]) + "poster.jpg").status_code == 302

    alice_client.delete(f"/api/share-links/{made['id']}")

    for route in public_routes(made["url"]):
        answer = anonymous.get(route)
        assert answer.status_code == 404 and "Location" not in answer, route
