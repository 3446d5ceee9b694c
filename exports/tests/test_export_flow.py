"""End to end through the ASGI app: upload, frame, export, watch over a WebSocket, use.

Real clip (generated), real pipeline, real per-user database and snapshot store, real
WebSocket consumer; the export runs on the embedded in-process worker pool.
"""

import asyncio

import av
import numpy as np
import pytest
from django.test import Client

from exports.interpolation import CropPath
from exports.models import ExportJob
from exports.tests.helpers import export_socket
from projects.synthetic import BALL_ORANGE, ball_position
from projects.tests.helpers import create_project, post_json, upload_clip
from syncstore.models import SyncState
from syncstore.tests.helpers import committed_database, committed_ids

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SOURCE_W, SOURCE_H, FPS, SECONDS = 640, 360, 30, 2.0
CROP_H = SOURCE_H
CROP_W = CROP_H * 9 / 16


def ball_keyframes():
    """A 9:16 window centred on the ball every half second (kept inside the frame)."""
    keyframes = []
    for i in range(5):
        t = i * 0.5
        bx, _ = ball_position(t, SOURCE_W, SOURCE_H)
        x = min(max(bx - CROP_W / 2, 0), SOURCE_W - CROP_W)
        keyframes.append({"time": t, "x": x, "y": 0, "width": CROP_W, "height": CROP_H})
    return keyframes


@pytest.fixture
def fast_exports(settings, local_store):
    settings.EXPORT_PRESET = "ultrafast"
    settings.EXPORT_MODE = "real"


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


async def watch(job_id, client, timeout=180):
    """Every message of the job's WebSocket until a final status."""
    communicator = export_socket(job_id, client)
    connected, _ = await communicator.connect()
    assert connected
    messages = []
    try:
        async with asyncio.timeout(timeout):
            while not messages or messages[-1]["status"] in ("pending", "processing"):
                messages.append(await communicator.receive_json_from(timeout=timeout))
    finally:
        await communicator.disconnect()
    return messages


def setup_project(client, clip_path):
    project = create_project(client, "Cup final", "9:16")
    clip = upload_clip(client, project["id"], clip_path)
    url = f"/api/projects/{project['id']}/clips/{clip['id']}"
    response = post_json(client, url, {"crop_keyframes": ball_keyframes()}, method="patch")
    assert response.status_code == 200, response.content
    return project


async def assert_complete_is_committed(user, final, table, tmp_path):
    """What "complete" said (over the WebSocket) and the job row agree, and the user's
    snapshot version they name, read from the store, holds the video row."""
    key = "working_video_id" if table == "projects_workingvideo" else "final_video_id"
    job = await ExportJob.objects.aget(pk=final["job_id"])
    assert job.status == ExportJob.Status.COMPLETE
    assert (job.result[key], job.result["committed_version"]) == (
        final[key],
        final["committed_version"],
    )
    in_store = await asyncio.to_thread(
        committed_ids, user, table, tmp_path, version=final["committed_version"]
    )
    assert final[key] in in_store, (final, sorted(in_store))
    row = await SyncState.objects.aget(user=user)
    assert row.status == "ok"


def decoded_frames(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream, [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)]


def assert_ball_where_the_crop_put_it(frames, out_w, out_h):
    path = CropPath(ball_keyframes(), SOURCE_W, SOURCE_H, aspect=9 / 16)
    for index in (0, 15, 31, 47, 59):
        t = index / FPS
        rect = path.at(t)
        bx, by = ball_position(t, SOURCE_W, SOURCE_H)
        ox = int((bx - rect["x"]) * out_w / rect["width"])
        oy = int((by - rect["y"]) * out_h / rect["height"])
        patch = frames[index][oy - 2 : oy + 3, ox - 2 : ox + 3].reshape(-1, 3).mean(axis=0)
        assert np.abs(patch - np.array(BALL_ORANGE)).max() < 60, (index, patch)


async def test_a_framing_export_end_to_end(
    fast_exports, django_user_model, ball_clip, settings, tmp_path
):
    alice = await django_user_model.objects.acreate(username="alice")
    client = await asyncio.to_thread(signed_in, alice)
    project = await asyncio.to_thread(setup_project, client, ball_clip)

    response = await asyncio.to_thread(
        post_json, client, f"/api/projects/{project['id']}/exports", {"kind": "framing"}
    )
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] in ("pending", "processing")

    messages = await watch(job["job_id"], client)

    final = messages[-1]
    assert final["status"] == "complete", final
    assert final["progress"] == 100
    progress = [m["progress"] for m in messages]
    assert progress == sorted(progress)  # never goes back
    assert {m["job_id"] for m in messages} == {job["job_id"]}
    assert set(final) >= {"job_id", "kind", "status", "progress", "phase", "message"}

    # The very next request sees it: no waiting, no "Loading working video...".
    listed = await asyncio.to_thread(client.get, "/api/projects")
    flags = listed.json()["projects"][0]
    assert flags["has_working_video"] is True
    assert flags["clips_exported"] == 1
    assert flags["clips_in_progress"] == 0
    video = (
        await asyncio.to_thread(client.get, f"/api/projects/{project['id']}/working-video")
    ).json()
    assert video["id"] == final["working_video_id"]
    assert (video["width"], video["height"]) == (1080, 1920)

    # Durable: "complete" names the committed version that holds the video, and that
    # version, downloaded from the store, has the row.
    await assert_complete_is_committed(alice, final, "projects_workingvideo", tmp_path)

    media = settings.MEDIA_ROOT / video["url"].removeprefix("/media/")
    stream, frames = await asyncio.to_thread(decoded_frames, media)
    assert (stream.codec_context.width, stream.codec_context.height) == (1080, 1920)
    assert stream.codec_context.pix_fmt == "yuv420p"
    assert len(frames) == int(SECONDS * FPS)
    assert_ball_where_the_crop_put_it(frames, 1080, 1920)


async def test_a_late_subscriber_gets_complete(fast_exports, django_user_model, ball_clip):
    alice = await django_user_model.objects.acreate(username="alice")
    client = await asyncio.to_thread(signed_in, alice)
    project = await asyncio.to_thread(setup_project, client, ball_clip)
    job = (
        await asyncio.to_thread(
            post_json, client, f"/api/projects/{project['id']}/exports", {"kind": "framing"}
        )
    ).json()
    async with asyncio.timeout(180):
        while (await ExportJob.objects.aget(pk=job["job_id"])).status != "complete":
            await asyncio.sleep(0.2)

    messages = await watch(job["job_id"], client)
    assert len(messages) == 1
    assert messages[0]["status"] == "complete"
    assert "working_video_id" in messages[0]


async def test_another_users_websocket_is_refused(fast_exports, django_user_model, ball_clip):
    alice = await django_user_model.objects.acreate(username="alice")
    bob = await django_user_model.objects.acreate(username="bob")
    alice_client = await asyncio.to_thread(signed_in, alice)
    bob_client = await asyncio.to_thread(signed_in, bob)
    project = await asyncio.to_thread(setup_project, alice_client, ball_clip)
    job = (
        await asyncio.to_thread(
            post_json, alice_client, f"/api/projects/{project['id']}/exports", {"kind": "framing"}
        )
    ).json()

    for client in (bob_client, None):  # another user; nobody signed in
        communicator = export_socket(job["job_id"], client)
        connected, _ = await communicator.connect()
        assert not connected
    # And over HTTP it does not exist for bob.
    response = await asyncio.to_thread(bob_client.get, f"/api/exports/{job['job_id']}")
    assert response.status_code == 404
    await watch(job["job_id"], alice_client)  # let it finish inside this test


async def test_two_users_exporting_at_once_each_commit_only_their_own_rows(
    fast_exports, settings, django_user_model, ball_clip, tmp_path
):
    settings.EXPORT_MODE = "mock"  # a short render: what is under test is where rows go
    users = [await django_user_model.objects.acreate(username=n) for n in ("alice", "bob")]
    clients = [await asyncio.to_thread(signed_in, user) for user in users]
    projects = [await asyncio.to_thread(setup_project, c, ball_clip) for c in clients]
    for user, client, project in zip(users, clients, projects, strict=True):
        url = f"/api/projects/{project['id']}"
        renamed = await asyncio.to_thread(post_json, client, url, {"name": user.username}, "patch")
        assert renamed.status_code == 200

    started = [
        await asyncio.to_thread(
            post_json, c, f"/api/projects/{p['id']}/exports", {"kind": "framing"}
        )
        for c, p in zip(clients, projects, strict=True)
    ]
    finals = await asyncio.gather(
        *(watch(s.json()["job_id"], c) for s, c in zip(started, clients, strict=True))
    )

    for user, messages in zip(users, finals, strict=True):
        final = messages[-1]
        assert final["status"] == "complete", final
        await assert_complete_is_committed(user, final, "projects_workingvideo", tmp_path)
        names, files = await asyncio.to_thread(committed_names_and_files, user, tmp_path)
        assert names == [user.username]  # the other user's project is not in it
        assert files and all(f.startswith(f"users/{user.pk}/") for f in files), files


def committed_names_and_files(user, tmp_path):
    """The project names and working-video files of ``user``'s committed snapshot."""
    with committed_database(SyncState.objects.get(user=user), tmp_path) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM projects_project")]
        files = [f for (f,) in conn.execute("SELECT file FROM projects_workingvideo")]
    return names, files
