"""Framing edits on a clip (crop keyframes, trim, slow-motion segments) and clip order."""

import json

import pytest

from projects.models import Clip

from .helpers import create_project, in_user_db, media_files, post_json, upload_clip

pytestmark = pytest.mark.django_db

# A 9:16 window over the 320x180 test clip: full height, 180 * 9 / 16 wide.
W, H = 101.25, 180


def kf(time, x=0, y=0, width=W, height=H):
    return {"time": time, "x": x, "y": y, "width": width, "height": height}


@pytest.fixture
def clip_url(project, clip):
    return f"/api/projects/{project['id']}/clips/{clip['id']}"


def patch(client, url, body):
    """PATCH a JSON body; a str is sent as is (for NaN, huge numbers, broken JSON)."""
    data = body if isinstance(body, str) else json.dumps(body)
    return client.patch(url, data, content_type="application/json")


def stored(user, clip_id):
    with in_user_db(user):
        return Clip.objects.get(pk=clip_id)


def edits_of(clip):
    return (clip.crop_keyframes, clip.trim_start, clip.trim_end, clip.segments, clip.edited_at)


def test_it_stores_valid_crop_keyframes(alice_client, alice, clip, clip_url):
    keyframes = [kf(0), kf(1.5, x=320 - W)]

    response = patch(alice_client, clip_url, {"crop_keyframes": keyframes})

    assert response.status_code == 200, response.content
    assert response.json()["crop_keyframes"] == [
        {"time": 0.0, "x": 0.0, "y": 0.0, "width": W, "height": H},
        {"time": 1.5, "x": 218.75, "y": 0.0, "width": W, "height": H},
    ]
    assert response.json()["edited_at"] is not None
    saved = stored(alice, clip["id"])
    assert saved.crop_keyframes == response.json()["crop_keyframes"]
    assert saved.edited_at is not None
    assert saved.edited_at.isoformat() == response.json()["edited_at"]


def test_it_clamps_rectangles_a_hair_outside_the_frame(alice_client, alice, clip, clip_url):
    response = patch(alice_client, clip_url, {"crop_keyframes": [kf(0, x=-0.3, y=0.4)]})

    assert response.status_code == 200, response.content
    [saved] = stored(alice, clip["id"]).crop_keyframes
    assert (saved["x"], saved["y"], saved["height"]) == (0.0, 0.0, 180.0)


def test_an_empty_keyframe_list_clears_the_crop(alice_client, alice, clip, clip_url):
    assert patch(alice_client, clip_url, {"crop_keyframes": [kf(0)]}).status_code == 200

    response = patch(alice_client, clip_url, {"crop_keyframes": []})

    assert response.status_code == 200
    assert stored(alice, clip["id"]).crop_keyframes == []


def _raw(x):
    """A body with ``x`` spliced in as the crop x, for what json.dumps will not write."""
    return (
        '{"crop_keyframes": [{"time": 0, "x": ' + x + ', "y": 0, "width": 101.25, "height": 180}]}'
    )


BAD_CROPS = {
    "not a list": {"crop_keyframes": kf(0)},
    "null": {"crop_keyframes": None},
    "item not an object": {"crop_keyframes": [[0, 0, 0, W, H]]},
    "missing key": {"crop_keyframes": [{"time": 0, "x": 0, "y": 0, "width": W}]},
    "string number": {"crop_keyframes": [kf(0, x="10")]},
    "bool number": {"crop_keyframes": [kf(0, y=True)]},
    "null number": {"crop_keyframes": [kf(None)]},
    "NaN": _raw("NaN"),
    "Infinity": _raw("Infinity"),
    "huge integer": _raw("1" + "0" * 400),
    "time after the clip": {"crop_keyframes": [kf(2.5)]},
    "negative time": {"crop_keyframes": [kf(-0.5)]},
    "unsorted times": {"crop_keyframes": [kf(1.0), kf(0.5)]},
    "duplicate times": {"crop_keyframes": [kf(1.0), kf(1.0, x=10)]},
    "outside on the right": {"crop_keyframes": [kf(0, x=250)]},
    "outside at the top": {"crop_keyframes": [kf(0, y=-5, height=H - 5, width=(H - 5) * 9 / 16)]},
    "taller than the frame": {"crop_keyframes": [kf(0, width=112.5, height=200)]},
    "wrong aspect ratio": {"crop_keyframes": [kf(0, width=180, height=180)]},
    "degenerate rectangle": {"crop_keyframes": [kf(0, width=0.5625, height=1)]},
    "negative size": {"crop_keyframes": [kf(0, x=200, width=-W, height=-H)]},
}


@pytest.mark.parametrize("body", BAD_CROPS.values(), ids=BAD_CROPS.keys())
def test_it_rejects_malformed_crop_keyframes(alice_client, alice, clip, clip_url, body):
    assert patch(alice_client, clip_url, {"crop_keyframes": [kf(0)]}).status_code == 200
    before = edits_of(stored(alice, clip["id"]))

    response = patch(alice_client, clip_url, body)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_crop_keyframes"
    assert response.json()["field"] == "crop_keyframes"
    assert response.json()["error"]
    assert edits_of(stored(alice, clip["id"])) == before


def test_it_limits_the_number_of_keyframes(alice_client, alice, settings, clip, clip_url):
    settings.MAX_KEYFRAMES_PER_CLIP = 3

    ok = patch(alice_client, clip_url, {"crop_keyframes": [kf(0), kf(0.5), kf(1)]})
    too_many = patch(alice_client, clip_url, {"crop_keyframes": [kf(0), kf(0.5), kf(1), kf(1.5)]})

    assert ok.status_code == 200
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "invalid_crop_keyframes"
    assert len(stored(alice, clip["id"]).crop_keyframes) == 3


def test_crop_keyframes_follow_the_projects_aspect_ratio(alice_client, alice, game_clip_path):
    project = create_project(alice_client, aspect_ratio="1:1")
    clip = upload_clip(alice_client, project["id"], game_clip_path)
    url = f"/api/projects/{project['id']}/clips/{clip['id']}"

    portrait = patch(alice_client, url, {"crop_keyframes": [kf(0)]})
    square = patch(alice_client, url, {"crop_keyframes": [kf(0, x=70, width=180, height=180)]})

    assert portrait.status_code == 400
    assert square.status_code == 200
    assert stored(alice, clip["id"]).crop_keyframes[0]["width"] == 180


def test_it_stores_and_clears_a_trim(alice_client, alice, clip, clip_url):
    response = patch(alice_client, clip_url, {"trim": {"start": 0.5, "end": 1.5}})

    assert response.status_code == 200, response.content
    assert response.json()["trim"] == {"start": 0.5, "end": 1.5}
    saved = stored(alice, clip["id"])
    assert (saved.trim_start, saved.trim_end) == (0.5, 1.5)
    first_edit = saved.edited_at
    assert first_edit is not None

    response = patch(alice_client, clip_url, {"trim": None})

    assert response.status_code == 200
    assert response.json()["trim"] is None
    saved = stored(alice, clip["id"])
    assert (saved.trim_start, saved.trim_end) == (None, None)
    assert saved.edited_at > first_edit


BAD_TRIMS = {
    "end before start": {"start": 1.5, "end": 0.5},
    "too short": {"start": 1.0, "end": 1.05},
    "end after the clip": {"start": 0.5, "end": 3.0},
    "missing end": {"start": 0.5},
    "string": {"start": "0.5", "end": 1.5},
    "a list": [0.5, 1.5],
    "a number": 1.5,
}


@pytest.mark.parametrize("trim", BAD_TRIMS.values(), ids=BAD_TRIMS.keys())
def test_it_rejects_a_bad_trim(alice_client, alice, clip, clip_url, trim):
    assert patch(alice_client, clip_url, {"trim": {"start": 0.2, "end": 1.8}}).status_code == 200
    before = edits_of(stored(alice, clip["id"]))

    response = patch(alice_client, clip_url, {"trim": trim})

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_trim"
    assert edits_of(stored(alice, clip["id"])) == before


def test_it_stores_slow_motion_segments(alice_client, alice, clip, clip_url):
    segments = [{"start": 0, "end": 0.5, "speed": 0.5}, {"start": 0.5, "end": 1.2, "speed": 1}]

    response = patch(alice_client, clip_url, {"segments": segments})

    assert response.status_code == 200, response.content
    expected = [
        {"start": 0.0, "end": 0.5, "speed": 0.5},
        {"start": 0.5, "end": 1.2, "speed": 1.0},
    ]
    assert response.json()["segments"] == expected
    saved = stored(alice, clip["id"])
    assert saved.segments == expected
    assert saved.edited_at is not None


BAD_SEGMENTS = {
    "speed 2": [{"start": 0, "end": 1, "speed": 2}],
    "speed as a string": [{"start": 0, "end": 1, "speed": "0.5"}],
    "overlapping": [{"start": 0, "end": 1, "speed": 0.5}, {"start": 0.8, "end": 1.5, "speed": 1}],
    "out of order": [{"start": 1, "end": 1.5, "speed": 0.5}, {"start": 0, "end": 0.5, "speed": 1}],
    "end equals start": [{"start": 1, "end": 1, "speed": 0.5}],
    "end before start": [{"start": 1, "end": 0.5, "speed": 0.5}],
    "outside the clip": [{"start": 1, "end": 4, "speed": 0.5}],
    "missing speed": [{"start": 0, "end": 1}],
    "not a list": {"start": 0, "end": 1, "speed": 0.5},
}


@pytest.mark.parametrize("segments", BAD_SEGMENTS.values(), ids=BAD_SEGMENTS.keys())
def test_it_rejects_bad_segments(alice_client, alice, clip, clip_url, segments):
    good = [{"start": 0.2, "end": 0.4, "speed": 0.5}]
    assert patch(alice_client, clip_url, {"segments": good}).status_code == 200
    before = edits_of(stored(alice, clip["id"]))

    response = patch(alice_client, clip_url, {"segments": segments})

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_segments"
    assert edits_of(stored(alice, clip["id"])) == before


def test_it_limits_the_number_of_segments(alice_client, settings, clip, clip_url):
    settings.MAX_SEGMENTS_PER_CLIP = 1
    segments = [{"start": 0, "end": 0.5, "speed": 0.5}, {"start": 1, "end": 1.5, "speed": 0.5}]

    response = patch(alice_client, clip_url, {"segments": segments})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_segments"


def test_one_bad_field_stores_none_of_the_edit(alice_client, alice, clip, clip_url):
    response = patch(
        alice_client,
        clip_url,
        {"crop_keyframes": [kf(0)], "name": "Renamed", "trim": {"start": 1.5, "end": 0.5}},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_trim"
    saved = stored(alice, clip["id"])
    assert edits_of(saved) == ([], None, None, [], None)
    assert saved.name == "game.mp4"


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"crop"', "\xff\xfe"])
def test_it_rejects_a_body_that_is_not_a_json_object(alice_client, alice, clip, clip_url, body):
    response = alice_client.patch(clip_url, body.encode("latin-1"), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"
    assert edits_of(stored(alice, clip["id"])) == ([], None, None, [], None)


def test_renaming_a_clip_is_not_a_framing_edit(alice_client, alice, clip, clip_url):
    response = patch(alice_client, clip_url, {"name": "../../Second half\x07.mp4"})

    assert response.status_code == 200
    assert response.json()["name"] == "Second half.mp4"
    saved = stored(alice, clip["id"])
    assert saved.name == "Second half.mp4"
    assert saved.edited_at is None
    assert saved.file == clip["url"].removeprefix("/media/")


def test_it_rejects_other_users_clip(alice_client, bob_client, alice, bob, project, clip, clip_url):
    # Bob has a project with the same id as Alice's, in his own database.
    bobs = create_project(bob_client, "Bob's game")
    assert bobs["id"] == project["id"]

    response = patch(bob_client, clip_url, {"crop_keyframes": [kf(0)]})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert edits_of(stored(alice, clip["id"])) == ([], None, None, [], None)
    with in_user_db(bob):
        assert not Clip.objects.exists()


def test_it_rejects_a_clip_from_another_project(alice_client, alice, clip):
    other = create_project(alice_client, "Other game")

    url = f"/api/projects/{other['id']}/clips/{clip['id']}"
    patched = patch(alice_client, url, {"crop_keyframes": [kf(0)]})
    deleted = alice_client.delete(url)

    assert patched.status_code == 404
    assert deleted.status_code == 404
    saved = stored(alice, clip["id"])
    assert edits_of(saved) == ([], None, None, [], None)


def test_it_rejects_an_unknown_clip(alice_client, project):
    response = patch(alice_client, f"/api/projects/{project['id']}/clips/999", {"trim": None})
    assert response.status_code == 404


def test_deleting_a_clip_removes_its_file(alice_client, alice, settings, clip, clip_url):
    # Only the committed version is kept, so no retained version references the file
    # once the deletion is committed (test_saved_means_saved covers longer retention).
    settings.SNAPSHOT_RETENTION = 1
    assert len(media_files(settings)) == 1

    response = alice_client.delete(clip_url)

    assert response.status_code == 204
    with in_user_db(alice):
        assert not Clip.objects.exists()
    assert media_files(settings) == []


@pytest.fixture
def three_clips(alice_client, project, game_clip_path):
    return [upload_clip(alice_client, project["id"], game_clip_path)["id"] for _ in range(3)]


def positions(user):
    with in_user_db(user):
        return list(Clip.objects.order_by("position").values_list("id", flat=True))


def test_it_reorders_clips(alice_client, alice, project, three_clips):
    a, b, c = three_clips
    url = f"/api/projects/{project['id']}"

    response = post_json(alice_client, url, {"clip_order": [c, a, b]}, method="patch")

    assert response.status_code == 200, response.content
    assert [clip["id"] for clip in response.json()["clips"]] == [c, a, b]
    assert [clip["position"] for clip in response.json()["clips"]] == [0, 1, 2]
    assert positions(alice) == [c, a, b]
    assert [clip["id"] for clip in alice_client.get(url).json()["clips"]] == [c, a, b]


@pytest.mark.parametrize(
    "order",
    [
        "missing one",
        "duplicate",
        "unknown id",
        "strings",
        "bools",
        "not a list",
        "null",
    ],
)
def test_it_rejects_a_bad_clip_order(alice_client, alice, project, three_clips, order):
    a, b, c = three_clips
    assert a == 1  # so that True would pass for a's id if bools were not refused
    bad = {
        "missing one": [c, a],
        "duplicate": [c, a, a, b],
        "unknown id": [c, a, 999],
        "strings": [str(c), str(a), str(b)],
        "bools": [c, True, b],
        "not a list": {"0": c},
        "null": None,
    }[order]

    response = post_json(
        alice_client,
        f"/api/projects/{project['id']}",
        {"name": "Renamed", "clip_order": bad},
        method="patch",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_clip_order"
    assert positions(alice) == [a, b, c]
    assert alice_client.get(f"/api/projects/{project['id']}").json()["name"] == "Game"


@pytest.mark.parametrize("name", [None, "", "   ", 7])
def test_it_rejects_a_clip_name_that_is_not_text(alice_client, alice, clip, clip_url, name):
    response = patch(alice_client, clip_url, {"name": name})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_name"
    assert stored(alice, clip["id"]).name == clip["name"]


def test_the_aspect_ratio_is_locked_while_clips_have_crops(
    alice_client, alice, project, clip, clip_url
):
    project_url = f"/api/projects/{project['id']}"
    # Without crops the shape is free to change...
    assert patch(alice_client, project_url, {"aspect_ratio": "1:1"}).status_code == 200
    assert patch(alice_client, project_url, {"aspect_ratio": "9:16"}).status_code == 200
    # ...with crops drawn in 9:16 it is not.
    assert patch(alice_client, clip_url, {"crop_keyframes": [kf(0.0)]}).status_code == 200
    response = patch(alice_client, project_url, {"aspect_ratio": "16:9"})
    assert response.status_code == 409
    assert response.json()["code"] == "aspect_ratio_locked"
    assert alice_client.get(project_url).json()["aspect_ratio"] == "9:16"
    # Re-sending the same ratio is not a change.
    assert patch(alice_client, project_url, {"aspect_ratio": "9:16"}).status_code == 200


def test_a_body_over_the_request_size_limit_is_a_json_413(alice_client, settings, clip_url):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = patch(alice_client, clip_url, {"crop_keyframes": [kf(0.0)] * 50})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
