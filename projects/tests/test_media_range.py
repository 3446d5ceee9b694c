"""Serving media with HTTP Range (video seeking), through the test client and through ASGI."""

import pytest
import requests
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.files.base import ContentFile
from django.test import AsyncClient, Client

from projects import media
from projects.media import parse_range

from .helpers import body, store_media


@pytest.fixture
def clip_bytes(game_clip_path):
    return game_clip_path.read_bytes()


@pytest.mark.django_db
def test_it_serves_the_whole_clip_and_advertises_ranges(alice_client, clip, clip_bytes):
    response = alice_client.get(clip["url"])

    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(clip_bytes))
    assert "Content-Range" not in response
    assert response["Cache-Control"] == "private, max-age=3600"
    assert body(response) == clip_bytes


@pytest.mark.django_db
def test_a_head_request_gets_the_headers(alice_client, clip, clip_bytes):
    response = alice_client.head(clip["url"])
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(clip_bytes))
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, None),
        ("bytes=-50", -50, None),
        ("bytes=1000-1000", 1000, 1000),
        ("bytes=100-99999999", 100, None),  # an end past the file is cut to it
        ("bytes=-99999999", 0, None),  # a suffix longer than the file is all of it
        (" bytes=5-9 ", 5, 9),
    ],
)
def test_it_answers_a_range_with_206(alice_client, clip, clip_bytes, header, start, end):
    size = len(clip_bytes)
    first = start % size if start < 0 else start
    last = size - 1 if end is None else end

    response = alice_client.get(clip["url"], HTTP_RANGE=header)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == clip_bytes[first : last + 1]


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size_plus}-{size_plus2}", "bytes=-0"])
def test_a_range_past_the_end_is_416(alice_client, clip, clip_bytes, header):
    size = len(clip_bytes)
    header = header.format(size=size, size_plus=size + 10, size_plus2=size + 20)

    response = alice_client.get(clip["url"], HTTP_RANGE=header)

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"
    assert response.content == b""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "bytes=abc",
        "bytes=-",
        "bytes=0-99,200-299",
        "items=0-99",
        "bytes 0-99",
        "bytes=0x10-20",
        "bytes=1.5-20",
        "bytes=0-" + "9" * 5000,  # more digits than int() takes: was a 500
    ],
)
def test_a_malformed_range_gets_the_whole_file(alice_client, clip, clip_bytes, header):
    response = alice_client.get(clip["url"], HTTP_RANGE=header)

    assert response.status_code == 200
    assert "Content-Range" not in response
    assert body(response) == clip_bytes


@pytest.mark.django_db
def test_an_empty_file_has_no_satisfiable_range(alice, alice_client):
    name = store_media(alice, "clips", b"")

    whole = alice_client.get(f"/media/{name}")
    ranged = alice_client.get(f"/media/{name}", HTTP_RANGE="bytes=0-")

    assert whole.status_code == 200
    assert whole["Content-Length"] == "0"
    assert body(whole) == b""
    assert ranged.status_code == 416
    assert ranged["Content-Range"] == "bytes */0"


@pytest.mark.django_db
def test_media_only_answers_get(alice_client, clip):
    assert alice_client.post(clip["url"]).status_code == 405
    assert alice_client.delete(clip["url"]).status_code == 405


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("", 1000, None),
        ("bytes=0-0", 1000, (0, 0)),
        ("bytes=0-999", 1000, (0, 999)),
        ("bytes=0-1000", 1000, (0, 999)),
        ("bytes=999-", 1000, (999, 999)),
        ("bytes=1000-", 1000, "unsatisfiable"),
        ("bytes=1000-2000", 1000, "unsatisfiable"),
        ("bytes=-1", 1000, (999, 999)),
        ("bytes=-1000", 1000, (0, 999)),
        ("bytes=-5000", 1000, (0, 999)),
        ("bytes=-0", 1000, "unsatisfiable"),
        ("bytes=5-2", 1000, "unsatisfiable"),
        ("bytes=0-", 0, "unsatisfiable"),
        ("bytes=-10", 0, "unsatisfiable"),
        ("bytes=-", 1000, None),
        ("bytes=", 1000, None),
        ("bytes=1-2,5-6", 1000, None),
        ("Bytes=0-1", 1000, None),
        ("bytes=0-1\n", 1000, (0, 1)),
        ("bytes=" + "1" * 5000 + "-", 1000, None),
        ("bytes=-" + "1" * 5000, 1000, None),
        ("bytes=0-" + "0" * 30 + "5", 1000, (0, 5)),
        ("bytes=" + "9" * 30 + "-", 1000, "unsatisfiable"),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "name",
    [
        "users/1/clips/" + "a" * 32 + ".mp4\n",
        "users/1/clips/" + "a" * 32 + ".mp4/",
        "users/1/clips/" + "a" * 31 + ".mp4",
        "users/1/clips/" + "A" * 32 + ".mp4",
        "users/0/clips/" + "a" * 32 + ".mp4",
        "/users/1/clips/" + "a" * 32 + ".mp4",
        "users/1/../2/clips/" + "a" * 32 + ".mp4",
    ],
)
def test_owner_of_refuses_names_it_did_not_generate(name):
    assert media.owner_of(name) is None


def test_owner_of_reads_generated_names():
    assert media.owner_of(media.new_name(42, "working", "mp4")) == 42


# --- The asynchronous path: what daphne runs -----------------------------------------


@pytest.fixture
def small_chunks(monkeypatch):
    # Many chunks even for a small range, so the async reader's loop really runs.
    monkeypatch.setattr(media, "CHUNK_SIZE", 7)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_async_client_streams_a_range(alice, clip, clip_bytes, small_chunks):
    client = AsyncClient()
    await client.aforce_login(alice)

    response = await client.get(clip["url"], headers={"range": "bytes=100-199"})

    assert response.status_code == 206
    assert response.is_async  # served by the async reader, not collected in memory
    chunks = [chunk async for chunk in response.streaming_content]
    assert b"".join(chunks) == clip_bytes[100:200]
    assert len(chunks) == 15  # ceil(100 / 7)
    assert response["Content-Range"] == f"bytes 100-199/{len(clip_bytes)}"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_async_client_gets_404_for_another_users_media(alice, bob, clip):
    client = AsyncClient()
    await client.aforce_login(bob)

    response = await client.get(clip["url"], headers={"range": "bytes=0-9"})

    assert response.status_code == 404


async def asgi_get(path, headers):
    from reeleditor.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    messages = []
    while True:
        message = await communicator.receive_output(timeout=10)
        messages.append(message)
        if not message.get("more_body"):
            break
    await communicator.wait(timeout=10)
    return start, messages


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_asgi_app_streams_the_requested_bytes(alice, clip, clip_bytes, small_chunks):
    client = Client()
    await sync_to_async(client.force_login)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    size = len(clip_bytes)

    start, messages = await asgi_get(
        clip["url"], [(b"cookie", cookie), (b"range", f"bytes={size - 30}-".encode())]
    )

    assert start["status"] == 206
    headers = {name.lower(): value for name, value in start["headers"]}
    assert headers[b"content-range"] == f"bytes {size - 30}-{size - 1}/{size}".encode()
    assert headers[b"content-length"] == b"30"
    assert b"".join(m.get("body", b"") for m in messages) == clip_bytes[-30:]
    # Sent as it was read (several body messages), not gathered into one.
    assert sum(1 for m in messages if m.get("body")) >= 5


@pytest.mark.django_db
def test_a_download_is_an_attachment_with_a_clean_name(alice_client, clip, clip_bytes):
    response = alice_client.get(clip["url"] + "?download=../Cup final<script>.mp4")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="..Cup finalscript.mp4"'
    assert body(response) == clip_bytes


@pytest.mark.django_db
def test_a_download_from_s3_is_a_presigned_attachment(alice, settings, s3_store):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": settings.S3_BUCKET,
                "endpoint_url": settings.S3_ENDPOINT_URL,
                "region_name": "us-east-1",
                "location": "media",
            },
        },
    }
    name = media.new_name(alice.pk, "final", "mp4")
    media.save(name, ContentFile(b"\x00" * 100))
    client = Client()
    client.force_login(alice)
    response = client.get(f"/media/{name}?download=reel.mp4")
    assert response.status_code == 302
    assert "response-content-disposition=attachment" in response["Location"]
    assert client.get(f"/media/{name}").status_code == 302  # plain playback: presigned too


@pytest.mark.django_db
def test_media_links_are_signed_for_the_public_endpoint(alice, settings, s3_store):
    """The app reaches the store at 127.0.0.1, browsers at "localhost" (as compose's app
    reaches minio:9000 and browsers localhost:9000): links name the browser's host and
    fetch the file from it."""
    public = settings.S3_ENDPOINT_URL.replace("127.0.0.1", "localhost")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "projects.mediastorage.MediaStorage",
            "OPTIONS": {
                "bucket_name": settings.S3_BUCKET,
                "endpoint_url": settings.S3_ENDPOINT_URL,
                "public_endpoint_url": public,
                "region_name": "us-east-1",
                "location": "media",
            },
        },
    }
    name = media.new_name(alice.pk, "final", "mp4")
    media.save(name, ContentFile(b"\x01" * 100))
    client = Client()
    client.force_login(alice)
    for query in ("", "?download=reel.mp4"):
        location = client.get(f"/media/{name}{query}")["Location"]
        assert location.startswith(public + "/"), location
        fetched = requests.get(location, timeout=10)
        assert fetched.status_code == 200 and fetched.content == b"\x01" * 100
