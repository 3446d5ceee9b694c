"""Follow the play through the app: the API starts a job on the in-process pool, the
WebSocket reports its progress, the proposal arrives in the job's message, and the
clip's own keyframes are untouched until the user accepts (PATCHes) the proposal."""

import asyncio

import pytest
from django.test import Client

from exports.models import ExportJob
from exports.tests.test_export_flow import watch
from projects.models import Clip
from projects.tests.helpers import create_project, in_user_db, post_json, upload_clip
from reframing import synthetic_play

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

SCENE = synthetic_play.Scene(seconds=4.0, width=640, height=360, pan=True, seed=21)
HAND_MADE = [{"time": 0.0, "x": 0.0, "y": 0.0, "width": 202.5, "height": 360.0}]


@pytest.fixture(scope="module")
def play_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("follow-job") / "play.mp4"
    synthetic_play.write(SCENE, path)
    return path


@pytest.fixture
def fast_exports(settings, local_store):
    settings.EXPORT_MODE = "real"


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def setup(client, clip_path):
    project = create_project(client, "Follow", "9:16")
    clip = upload_clip(client, project["id"], clip_path)
    url = f"/api/projects/{project['id']}/clips/{clip['id']}"
    assert post_json(client, url, {"crop_keyframes": HAND_MADE}, method="patch").status_code == 200
    return project, clip


async def test_a_proposal_is_made_and_the_clip_is_left_alone(
    fast_exports, django_user_model, play_clip
):
    alice = await django_user_model.objects.acreate(username="alice")
    client = await asyncio.to_thread(signed_in, alice)
    project, clip = await asyncio.to_thread(setup, client, play_clip)
    url = f"/api/projects/{project['id']}/clips/{clip['id']}/follow"
    response = await asyncio.to_thread(post_json, client, url, {})
    assert response.status_code == 202, response.content
    started = response.json()
    assert started["kind"] == "follow_play" and started["created"] is True

    messages = await watch(started["job_id"], client)
    final = messages[-1]
    assert final["status"] == "complete", final
    assert final["message"] == "Proposal ready"
    progress = [m["progress"] for m in messages]
    assert progress == sorted(progress)
    proposal = final["proposal"]
    assert final["clip_id"] == clip["id"]
    assert 2 <= len(proposal["keyframes"]) <= SCENE.seconds + 1
    assert proposal["window"] == {"width": 202.5, "height": 360.0}
    assert proposal["ball_seen"] > 0.5
    # Read back over HTTP too: what a reloaded page gets.
    again = (await asyncio.to_thread(client.get, f"/api/exports/{started['job_id']}")).json()
    assert again["proposal"] == proposal

    def keyframes():
        with in_user_db(alice):
            return Clip.objects.get(pk=clip["id"]).crop_keyframes

    assert await asyncio.to_thread(keyframes) == HAND_MADE  # nothing accepted yet


async def test_other_users_and_unknown_clips_get_404(fast_exports, django_user_model, play_clip):
    alice = await django_user_model.objects.acreate(username="alice")
    bob = await django_user_model.objects.acreate(username="bob")
    alice_client = await asyncio.to_thread(signed_in, alice)
    bob_client = await asyncio.to_thread(signed_in, bob)
    project, clip = await asyncio.to_thread(setup, alice_client, play_clip)
    url = f"/api/projects/{project['id']}/clips/{clip['id']}/follow"
    response = await asyncio.to_thread(post_json, bob_client, url, {})
    assert response.status_code == 404
    assert response.json()["code"]
    missing = f"/api/projects/{project['id']}/clips/{clip['id'] + 99}/follow"
    assert (await asyncio.to_thread(post_json, alice_client, missing, {})).status_code == 404
    assert not await ExportJob.objects.filter(kind="follow_play").aexists()
