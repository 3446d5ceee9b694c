"""Who may reach what: another user's objects are 404 everywhere, never 403 and never data.

Alice owns a project with a clip, a working video, a final video and a highlight region;
Bob tries every URL that names them. Ids are per user (each has their own database), so
Bob's own project can even share an id with Alice's and still never reach her rows.
"""

import hashlib
import json
from pathlib import Path

import pytest

from projects.models import Clip, FinalVideo, HighlightRegion, Project, WorkingVideo

from .helpers import (
    add_final_video,
    add_working_video,
    create_project,
    in_user_db,
    media_files,
    store_media,
    upload_clip,
)

pytestmark = pytest.mark.django_db

REGION = {
    "start": 0.0,
    "end": 1.0,
    "effect": "dim_outside",
    "keyframes": [{"time": 0.0, "x": 500, "y": 900, "rx": 100, "ry": 100}],
}
CROP = {"crop_keyframes": [{"time": 0, "x": 0, "y": 0, "width": 101.25, "height": 180}]}


@pytest.fixture
def alices(alice, alice_client, game_clip_path):
    """Alice's project and everything in it; returns the ids and media names."""
    project = create_project(alice_client, "Alice's final")
    clip = upload_clip(alice_client, project["id"], game_clip_path)
    working = add_working_video(
        alice, project["id"], file=store_media(alice, "working", b"W" * 500)
    )
    final = add_final_video(alice, project["id"], file=store_media(alice, "final", b"F" * 300))
    response = alice_client.put(
        f"/api/projects/{project['id']}/highlights",
        json.dumps({"regions": [REGION]}),
        "application/json",
    )
    assert response.status_code == 200
    return {
        "project": project["id"],
        "clip": clip["id"],
        "clip_file": clip["url"].removeprefix("/media/"),
        "working_file": working.file,
        "final_file": final.file,
    }


def snapshot(user, settings):
    """Everything of ``user``'s that a request could change: rows and file bytes."""
    with in_user_db(user):
        rows = {
            model.__name__: list(model.objects.order_by("pk").values())
            for model in (Project, Clip, WorkingVideo, FinalVideo, HighlightRegion)
        }
    files = {
        name: hashlib.sha256((Path(settings.MEDIA_ROOT) / name).read_bytes()).hexdigest()
        for name in media_files(settings)
        if name.startswith(f"users/{user.pk}/")
    }
    return rows, files


def api_requests(a):
    p, c = a["project"], a["clip"]
    body = json.dumps({"name": "Mine now", "current_mode": "overlay", **CROP})
    return [
        ("get", f"/api/projects/{p}", None),
        ("patch", f"/api/projects/{p}", body),
        ("delete", f"/api/projects/{p}", None),
        ("post", f"/api/projects/{p}/open", None),
        ("patch", f"/api/projects/{p}/clips/{c}", body),
        ("delete", f"/api/projects/{p}/clips/{c}", None),
        ("get", f"/api/projects/{p}/highlights", None),
        ("put", f"/api/projects/{p}/highlights", json.dumps({"regions": []})),
        ("get", f"/api/projects/{p}/working-video", None),
        ("get", f"/api/projects/{p}/final-videos", None),
    ]


def send(client, method, url, body):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, content_type="application/json")


def test_bob_gets_404_for_every_api_url_of_alices(alice, bob_client, settings, alices):
    before = snapshot(alice, settings)

    for method, url, body in api_requests(alices):
        response = send(bob_client, method, url, body)
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json() == {"error": "Not found.", "code": "not_found"}, (method, url)

    assert snapshot(alice, settings) == before


def test_bob_cannot_upload_into_alices_project(alice, bob, bob_client, settings, alices):
    from .helpers import upload

    before = snapshot(alice, settings)

    response = upload(bob_client, alices["project"], settings.MEDIA_ROOT / alices["clip_file"])

    assert response.status_code == 404
    assert snapshot(alice, settings) == before
    assert not any(name.startswith(f"users/{bob.pk}/") for name in media_files(settings))


@pytest.mark.parametrize("kind", ["clip_file", "working_file", "final_file"])
def test_bob_gets_404_for_alices_media(alice, bob, bob_client, settings, alices, kind):
    before = snapshot(alice, settings)

    response = bob_client.get(f"/media/{alices[kind]}", HTTP_RANGE="bytes=0-10")

    # Exactly what a file that does not exist looks like.
    missing = bob_client.get(f"/media/users/{bob.pk}/clips/{'0' * 32}.mp4")
    assert response.status_code == missing.status_code == 404
    assert response.content == missing.content
    assert snapshot(alice, settings) == before


def test_bob_gets_404_for_alices_project_page(bob_client, alices):
    response = bob_client.get(f"/projects/{alices['project']}/")
    assert response.status_code == 404


def test_alice_sees_her_own_objects(alice_client, alices):
    # The same URLs work for their owner, so the 404s above are about ownership.
    p = alices["project"]
    assert alice_client.get(f"/api/projects/{p}").status_code == 200
    assert alice_client.get(f"/api/projects/{p}/highlights").status_code == 200
    assert alice_client.get(f"/api/projects/{p}/working-video").status_code == 200
    assert alice_client.get(f"/projects/{p}/").status_code == 200
    for kind in ("clip_file", "working_file", "final_file"):
        assert alice_client.get(f"/media/{alices[kind]}").status_code == 200


def test_bobs_list_is_empty_and_his_database_untouched(bob, bob_client, settings, alices):
    for method, url, body in api_requests(alices):
        send(bob_client, method, url, body)

    assert bob_client.get("/api/projects").json() == {"projects": []}
    with in_user_db(bob):
        assert not Project.objects.exists()
        assert not Clip.objects.exists()
        assert not HighlightRegion.objects.exists()


def test_bobs_project_with_the_same_id_is_his_own(alice, bob, bob_client, settings, alices):
    before = snapshot(alice, settings)
    bobs = create_project(bob_client, "Bob's game")
    assert bobs["id"] == alices["project"]

    detail = bob_client.get(f"/api/projects/{bobs['id']}").json()
    renamed = bob_client.patch(
        f"/api/projects/{bobs['id']}", json.dumps({"name": "Bob's"}), "application/json"
    )

    assert detail["name"] == "Bob's game"
    assert detail["clips"] == [] and detail["working_video"] is None
    assert renamed.status_code == 200
    patch = bob_client.patch(
        f"/api/projects/{bobs['id']}/clips/{alices['clip']}", json.dumps(CROP), "application/json"
    )
    assert patch.status_code == 404
    assert snapshot(alice, settings) == before


def test_anonymous_api_requests_get_401_json(client, alice, settings, alices):
    before = snapshot(alice, settings)

    for method, url, body in [*api_requests(alices), ("get", "/api/projects", None)]:
        response = send(client, method, url, body)
        assert response.status_code == 401, (method, url)
        assert response.json()["code"] == "not_authenticated"

    assert snapshot(alice, settings) == before


@pytest.mark.parametrize("kind", ["clip_file", "working_file", "final_file"])
def test_anonymous_media_requests_redirect_to_login(client, alices, kind):
    response = client.get(f"/media/{alices[kind]}")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/media/")


def test_anonymous_page_requests_redirect_to_login(client, alices):
    response = client.get(f"/projects/{alices['project']}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def path_tricks(alice, bob, settings, alices, bobs_file):
    clip = alices["clip_file"]
    hex_name = clip.rsplit("/", 1)[1]
    bobs_rest = bobs_file.removeprefix("users/")
    return [
        f"users/{alice.pk}/../{bobs_rest}",
        f"users/{alice.pk}/%2e%2e/{bobs_rest}",
        f"users/{alice.pk}/%2E%2E%2F{bobs_rest}",
        f"users/{alice.pk}/clips/..%2f..%2f{bobs_rest}",
        f"users/{alice.pk}/clips/../../../users/{alice.pk}/projects.sqlite3",
        f"../users/{alice.pk}/projects.sqlite3",
        f"users/{alice.pk}/clips/./{hex_name}",
        f"users/{alice.pk}//clips/{hex_name}",
        f"./{clip}",
        f"/{clip}",
        str(Path(settings.MEDIA_ROOT) / clip),
        "/etc/passwd",
        f"users/{alice.pk}/clips/{hex_name}.txt",
        f"users/{alice.pk}/clips/{hex_name.upper()}",
        f"users/{alice.pk}/clips/{hex_name[:-4]}.exe",
        f"users/{alice.pk}/secrets/{hex_name}",
        f"users/{alice.pk}/notes.txt",
        f"users/0{alice.pk}/clips/{hex_name}",
        f"USERS/{alice.pk}/clips/{hex_name}",
        bobs_file,
    ]


def test_media_path_tricks_are_404_even_for_the_owner(alice, bob, alice_client, settings, alices):
    bobs_file = store_media(bob, "clips", b"B" * 100)
    # A file in Alice's media folder that the app did not name.
    notes = Path(settings.MEDIA_ROOT) / "users" / str(alice.pk) / "notes.txt"
    notes.write_text("private")

    for name in path_tricks(alice, bob, settings, alices, bobs_file):
        response = alice_client.get(f"/media/{name}")
        assert response.status_code == 404, name
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"private" not in body and b"B" * 100 not in body, name
        assert b"SQLite format" not in body, name


@pytest.mark.parametrize("kind", ["clip_file", "working_file", "final_file"])
@pytest.mark.parametrize("query", ["", "?download=reel.mp4"])
def test_bob_gets_404_and_no_signed_link_for_alices_s3_media(
    s3_media, settings, alice_client, bob_client, alices, kind, query
):
    """With media on S3 the owner is sent to a short-lived signed link; anyone else gets
    the same 404 as for a file that does not exist, and no link to the bucket."""
    url = f"/media/{alices[kind]}{query}"
    owner = alice_client.get(url)
    assert owner.status_code == 302 and "Signature" in owner["Location"]

    response = bob_client.get(url)

    assert response.status_code == 404
    assert "Location" not in response
    body = response.content.decode()
    assert settings.S3_BUCKET not in body and "Signature" not in body
