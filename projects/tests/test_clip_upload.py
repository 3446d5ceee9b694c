"""Uploading a source clip: probing, where the file goes, and every way an upload is refused."""

import json
import random
import re

import cv2
import numpy as np
import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.files.uploadhandler import StopUpload
from django.test import Client

from projects.models import Clip
from projects.uploads import SizeLimitHandler

from .helpers import create_project, in_user_db, media_files, multipart, upload, upload_clip

pytestmark = pytest.mark.django_db

CLIP_NAME_RE = r"users/{user_id}/clips/[0-9a-f]{{32}}\.mp4"


def clip_rows(user):
    with in_user_db(user):
        return list(Clip.objects.values("project_id", "name", "file"))


def assert_nothing_stored(settings, user):
    assert media_files(settings) == []
    assert clip_rows(user) == []


def post_raw(client, project_id, filename, data, **kwargs):
    body, content_type = multipart(filename, data, **kwargs)
    return client.post(f"/api/projects/{project_id}/clips", body, content_type=content_type)


def test_it_probes_and_stores_an_uploaded_clip(alice_client, alice, settings, game_clip_path):
    project = create_project(alice_client)

    response = upload(alice_client, project["id"], game_clip_path, filename="Saturday.mp4")

    assert response.status_code == 201, response.content
    clip = response.json()
    assert clip["name"] == "Saturday.mp4"
    assert (clip["width"], clip["height"]) == (320, 180)
    assert clip["fps"] == pytest.approx(30)
    assert clip["duration"] == pytest.approx(2.0, abs=1 / 30)
    assert clip["frame_count"] == 60
    assert clip["position"] == 0
    assert clip["size_bytes"] == game_clip_path.stat().st_size
    assert clip["crop_keyframes"] == [] and clip["trim"] is None and clip["edited_at"] is None

    [stored] = media_files(settings)
    assert re.fullmatch(CLIP_NAME_RE.format(user_id=alice.id), stored)
    assert (settings.MEDIA_ROOT / stored).read_bytes() == game_clip_path.read_bytes()
    assert clip["url"] == f"/media/{stored}"
    assert clip_rows(alice) == [
        {"project_id": project["id"], "name": "Saturday.mp4", "file": stored}
    ]


def test_clips_are_appended_in_upload_order(alice_client, alice, settings, game_clip_path):
    project = create_project(alice_client)
    first = upload_clip(alice_client, project["id"], game_clip_path)
    second = upload_clip(alice_client, project["id"], game_clip_path)

    assert (first["position"], second["position"]) == (0, 1)
    # Same bytes twice, still two distinct stored files.
    assert len(media_files(settings)) == 2
    listed = alice_client.get("/api/projects").json()["projects"][0]
    assert listed["clip_count"] == 2


@pytest.mark.parametrize(
    ("filename", "filename_star", "shown"),
    [
        ("../../etc/passwd.mp4", None, "passwd.mp4"),
        ("C:\\evil\\x.mp4", None, "x.mp4"),
        ("bell\x07and\x1bescape\t.mp4", None, "bellandescape.mp4"),
        ("plain.mp4", "UTF-8''..%2F..%2F..%2Froot%2F.ssh%2Fevil.mp4", "evil.mp4"),
        ("/absolute/path/clip.mp4", None, "clip.mp4"),
        ("clip.exe", None, "clip.exe"),
    ],
)
def test_a_client_filename_never_becomes_a_path(
    alice_client, alice, settings, game_clip_path, filename, filename_star, shown
):
    project = create_project(alice_client)

    response = post_raw(
        alice_client,
        project["id"],
        filename,
        game_clip_path.read_bytes(),
        filename_star=filename_star,
    )

    assert response.status_code == 201, response.content
    assert response.json()["name"] == shown
    [stored] = media_files(settings)
    # The stored name is generated; its extension comes from the probe, not the client.
    assert re.fullmatch(CLIP_NAME_RE.format(user_id=alice.id), stored)
    [row] = clip_rows(alice)
    assert row["file"] == stored and row["name"] == shown
    # Nothing was written anywhere but media storage's user prefix.
    assert not (settings.MEDIA_ROOT.parent / "etc").exists()


def png_bytes():
    image = np.zeros((90, 160, 3), dtype=np.uint8)
    image[:, :80] = (0, 140, 255)
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def not_a_video(kind, clip_bytes):
    if kind == "random":
        return random.Random(1234).randbytes(20_000)
    if kind == "text":
        return b"Final score 3-2. Highlights at 12:30 and 44:10.\n" * 50
    if kind == "png":
        return png_bytes()
    if kind == "truncated":
        return clip_bytes[: len(clip_bytes) // 2]
    if kind == "header_only":
        return clip_bytes[:2000]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["random", "text", "png", "truncated", "header_only"])
def test_it_refuses_files_that_are_not_usable_videos(
    alice_client, alice, settings, game_clip_path, kind
):
    project = create_project(alice_client)
    data = not_a_video(kind, game_clip_path.read_bytes())

    response = post_raw(alice_client, project["id"], "game.mp4", data)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_video"
    # A sentence for the uploader, not FFmpeg's internals or a temp path.
    assert body["error"][0].isupper() and body["error"].endswith(".")
    assert "/tmp" not in body["error"] and "Errno" not in body["error"]
    assert_nothing_stored(settings, alice)


def test_it_refuses_an_empty_file(alice_client, alice, settings):
    project = create_project(alice_client)

    response = post_raw(alice_client, project["id"], "game.mp4", b"")

    assert response.status_code == 400
    assert response.json() == {"error": "The uploaded file is empty.", "code": "invalid_video"}
    assert_nothing_stored(settings, alice)


def test_it_needs_the_file_field(alice_client, alice, settings, game_clip_path):
    project = create_project(alice_client)

    response = post_raw(alice_client, project["id"], "game.mp4", b"x", field="video")

    assert response.status_code == 400
    assert response.json()["code"] == "file_missing"
    assert_nothing_stored(settings, alice)


def test_it_needs_a_multipart_body(alice_client, alice, settings):
    project = create_project(alice_client)

    response = alice_client.post(
        f"/api/projects/{project['id']}/clips", "{}", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "file_missing"
    assert_nothing_stored(settings, alice)


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=\x01"],
)
def test_a_broken_multipart_body_is_a_400_not_a_500(alice_client, alice, settings, content_type):
    project = create_project(alice_client)

    response = alice_client.post(
        f"/api/projects/{project['id']}/clips", b"--x\r\n", content_type=content_type
    )

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert_nothing_stored(settings, alice)


def test_a_broken_multipart_body_is_400_with_csrf_checks_too(alice, settings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    project = create_project_with_token(client, token)

    response = client.post(
        f"/api/projects/{project['id']}/clips",
        b"--x\r\n",
        content_type="multipart/form-data",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert_nothing_stored(settings, alice)


def create_project_with_token(client, token):
    response = client.post(
        "/api/projects",
        json.dumps({"name": "Game", "aspect_ratio": "9:16"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_a_real_upload_passes_the_csrf_check(alice, settings, game_clip_path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/")
    token = client.cookies["csrftoken"].value
    project = create_project_with_token(client, token)
    body, content_type = multipart("game.mp4", game_clip_path.read_bytes())
    url = f"/api/projects/{project['id']}/clips"

    refused = client.post(url, body, content_type=content_type)
    accepted = client.post(url, body, content_type=content_type, HTTP_X_CSRFTOKEN=token)

    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    assert accepted.status_code == 201, accepted.content
    assert len(media_files(settings)) == 1


def test_an_oversized_upload_is_cut_off_while_the_csrf_check_parses_it(
    alice, settings, game_clip_path
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/")
    token = client.cookies["csrftoken"].value
    project = create_project_with_token(client, token)
    settings.MAX_UPLOAD_BYTES = 10_000
    body, content_type = multipart("game.mp4", game_clip_path.read_bytes())

    response = client.post(
        f"/api/projects/{project['id']}/clips",
        body,
        content_type=content_type,
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert_nothing_stored(settings, alice)


def test_an_unusable_content_length_is_not_a_500(alice_client, alice, settings, game_clip_path):
    project = create_project(alice_client)
    body, content_type = multipart("game.mp4", game_clip_path.read_bytes())

    response = alice_client.post(
        f"/api/projects/{project['id']}/clips",
        body,
        content_type=content_type,
        CONTENT_LENGTH="lots",
    )

    # Like Django, treat it as no body at all.
    assert response.status_code == 400
    assert response.json()["code"] == "file_missing"
    assert_nothing_stored(settings, alice)


def test_it_refuses_an_upload_over_the_size_limit(alice_client, alice, settings, game_clip_path):
    project = create_project(alice_client)
    settings.MAX_UPLOAD_BYTES = 10_000

    response = upload(alice_client, project["id"], game_clip_path)

    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert response.json()["error"]
    assert_nothing_stored(settings, alice)


def test_the_size_limit_handler_stops_a_body_as_it_streams(settings):
    settings.MAX_UPLOAD_BYTES = 10
    handler = SizeLimitHandler()

    assert handler.receive_data_chunk(b"x" * 6, 0) == b"x" * 6
    with pytest.raises(StopUpload) as excinfo:
        handler.receive_data_chunk(b"x" * 6, 6)

    assert excinfo.value.connection_reset is True
    assert handler.exceeded is True


def test_it_limits_the_clips_per_project(alice_client, alice, settings, game_clip_path):
    settings.MAX_CLIPS_PER_PROJECT = 1
    project = create_project(alice_client)
    first = upload_clip(alice_client, project["id"], game_clip_path)

    response = upload(alice_client, project["id"], game_clip_path)

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_clips"
    [stored] = media_files(settings)
    assert first["url"] == f"/media/{stored}"
    assert len(clip_rows(alice)) == 1


def test_it_rejects_uploads_into_another_users_project(
    alice_client, bob_client, alice, bob, settings, game_clip_path
):
    project = create_project(alice_client)

    response = upload(bob_client, project["id"], game_clip_path)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert_nothing_stored(settings, alice)
    assert clip_rows(bob) == []


def test_it_rejects_uploads_into_a_missing_project(alice_client, alice, settings, game_clip_path):
    response = upload(alice_client, 999, game_clip_path)

    assert response.status_code == 404
    assert_nothing_stored(settings, alice)


def test_it_only_accepts_post_for_uploads(alice_client):
    project = create_project(alice_client)
    response = alice_client.get(f"/api/projects/{project['id']}/clips")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def http_scope(path, headers, method="POST"):
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def asgi_call(scope, body=b""):
    from reeleditor.asgi import application

    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=10)
    chunks = []
    while True:
        message = await communicator.receive_output(timeout=10)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(timeout=10)
    return communicator, start, b"".join(chunks)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_asgi_guard_refuses_an_oversized_body_before_reading_it(settings):
    settings.MAX_UPLOAD_BYTES = 10_000
    scope = http_scope(
        "/api/projects/1/clips",
        [
            (b"host", b"testserver"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", b"5000000000"),
        ],
    )

    communicator, start, body = await asgi_call(scope, body=b"--x\r\n")

    assert start["status"] == 413
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"connection"] == b"close"
    assert json.loads(body)["code"] == "upload_too_large"
    # The body was never received: the message we queued is still waiting.
    assert communicator.input_queue.qsize() == 1


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_asgi_guard_lets_normal_requests_through(settings):
    settings.MAX_UPLOAD_BYTES = 10_000
    scope = http_scope(
        "/api/projects",
        [(b"host", b"testserver"), (b"content-length", b"10000")],
        method="GET",
    )

    communicator, start, body = await asgi_call(scope, body=b"x" * 10_000)

    # Django read the body and answered (anonymous: 401), not the guard.
    assert start["status"] == 401
    assert json.loads(body)["code"] == "not_authenticated"
    assert communicator.input_queue.qsize() == 0


class RecordingApp:
    def __init__(self):
        self.called = False

    async def __call__(self, scope, receive, send):
        self.called = True
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content_length", "refused"),
    [
        (b"75536", False),  # the limit plus the multipart allowance, exactly
        (b"75537", True),
        (b"not-a-number", False),  # left to Django, which reads no body for it
        (None, False),
    ],
)
async def test_the_asgi_guard_allows_the_limit_plus_multipart_framing(
    settings, content_length, refused
):
    from reeleditor.request_limits import MULTIPART_OVERHEAD, BodySizeLimit

    settings.MAX_UPLOAD_BYTES = 10_000
    assert MULTIPART_OVERHEAD == 65_536
    inner = RecordingApp()
    headers = [(b"host", b"testserver")]
    if content_length is not None:
        headers.append((b"content-length", content_length))
    communicator = ApplicationCommunicator(BodySizeLimit(inner), http_scope("/api/x", headers))

    start = await communicator.receive_output(timeout=5)
    await communicator.wait(timeout=5)

    assert start["status"] == (413 if refused else 204)
    assert inner.called is not refused
