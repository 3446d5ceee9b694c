"""The projects list's counts and flags, one state at a time; highlights; deleting a project."""

import datetime as dt
import json

import pytest

from projects.models import Clip, FinalVideo, HighlightRegion, Project, WorkingVideo

from .helpers import (
    add_final_video,
    add_working_video,
    create_project,
    in_user_db,
    media_files,
    post_json,
    upload_clip,
)

pytestmark = pytest.mark.django_db

CROP = {"crop_keyframes": [{"time": 0, "x": 0, "y": 0, "width": 101.25, "height": 180}]}
FLAGS = (
    "clip_count",
    "clips_exported",
    "clips_in_progress",
    "has_working_video",
    "has_overlay_edits",
    "has_final_video",
    "current_mode",
)


def flags(client, project_id):
    [listed] = [p for p in client.get("/api/projects").json()["projects"] if p["id"] == project_id]
    return {key: listed[key] for key in FLAGS}


def expected(**changes):
    base = {
        "clip_count": 0,
        "clips_exported": 0,
        "clips_in_progress": 0,
        "has_working_video": False,
        "has_overlay_edits": False,
        "has_final_video": False,
        "current_mode": "framing",
    }
    return {**base, **changes}


def edit(client, project_id, clip_id, body=CROP):
    response = post_json(client, f"/api/projects/{project_id}/clips/{clip_id}", body, "patch")
    assert response.status_code == 200, response.content
    return response.json()


def mark_exported(user, clip_id, *, after_edit=dt.timedelta(seconds=1)):
    """Stamp the clip as an export would: exported after its last edit."""
    with in_user_db(user):
        clip = Clip.objects.get(pk=clip_id)
        base = clip.edited_at or clip.created_at
        clip.exported_at = base + after_edit
        clip.save(update_fields=["exported_at"])


def region(**changes):
    base = {
        "start": 0.2,
        "end": 1.5,
        "effect": "dim_outside",
        "color": "#FFD400",
        "stroke_width": 4,
        "keyframes": [{"time": 0.2, "x": 540, "y": 960, "rx": 120, "ry": 160}],
    }
    return {**base, **changes}


def put_regions(client, project_id, regions):
    url = f"/api/projects/{project_id}/highlights"
    return client.put(url, json.dumps({"regions": regions}), "application/json")


def test_a_new_project_has_no_clips_and_no_flags(alice_client, project):
    assert flags(alice_client, project["id"]) == expected()
    assert project["clip_count"] == 0


def test_an_uploaded_clip_is_neither_exported_nor_in_progress(
    alice_client, project, game_clip_path
):
    upload_clip(alice_client, project["id"], game_clip_path)

    assert flags(alice_client, project["id"]) == expected(clip_count=1)


def test_edited_clips_are_in_progress(alice_client, project, game_clip_path):
    first = upload_clip(alice_client, project["id"], game_clip_path)
    second = upload_clip(alice_client, project["id"], game_clip_path)
    upload_clip(alice_client, project["id"], game_clip_path)

    edit(alice_client, project["id"], first["id"])
    assert flags(alice_client, project["id"]) == expected(clip_count=3, clips_in_progress=1)

    edit(alice_client, project["id"], second["id"], {"trim": {"start": 0.1, "end": 1.0}})
    edit(alice_client, project["id"], first["id"], {"segments": []})  # still one clip
    assert flags(alice_client, project["id"]) == expected(clip_count=3, clips_in_progress=2)


def test_exported_clips_are_counted_as_exported(alice, alice_client, project, game_clip_path):
    edited = upload_clip(alice_client, project["id"], game_clip_path)
    untouched = upload_clip(alice_client, project["id"], game_clip_path)
    edit(alice_client, project["id"], edited["id"])

    mark_exported(alice, edited["id"])
    assert flags(alice_client, project["id"]) == expected(clip_count=2, clips_exported=1)

    # A clip exported as uploaded, with no edits at all, is exported too.
    mark_exported(alice, untouched["id"])
    assert flags(alice_client, project["id"]) == expected(clip_count=2, clips_exported=2)


def test_an_export_at_the_instant_of_the_edit_counts_as_exported(
    alice, alice_client, project, game_clip_path
):
    clip = upload_clip(alice_client, project["id"], game_clip_path)
    edit(alice_client, project["id"], clip["id"])

    mark_exported(alice, clip["id"], after_edit=dt.timedelta(0))

    assert flags(alice_client, project["id"]) == expected(clip_count=1, clips_exported=1)


def test_editing_after_an_export_puts_the_clip_back_in_progress(
    alice, alice_client, project, game_clip_path
):
    clip = upload_clip(alice_client, project["id"], game_clip_path)
    edit(alice_client, project["id"], clip["id"])
    # Exported a moment after that edit (but before the next one).
    mark_exported(alice, clip["id"], after_edit=dt.timedelta(microseconds=1))
    assert flags(alice_client, project["id"]) == expected(clip_count=1, clips_exported=1)

    edit(alice_client, project["id"], clip["id"], {"trim": {"start": 0.5, "end": 1.5}})

    assert flags(alice_client, project["id"]) == expected(clip_count=1, clips_in_progress=1)
    with in_user_db(alice):
        saved = Clip.objects.get(pk=clip["id"])
        assert saved.edited_at > saved.exported_at


def test_renaming_an_exported_clip_keeps_it_exported(alice, alice_client, project, game_clip_path):
    clip = upload_clip(alice_client, project["id"], game_clip_path)
    edit(alice_client, project["id"], clip["id"])
    mark_exported(alice, clip["id"])

    edit(alice_client, project["id"], clip["id"], {"name": "Goal"})

    assert flags(alice_client, project["id"]) == expected(clip_count=1, clips_exported=1)


def test_a_working_video_unlocks_overlay_mode(alice, alice_client, project):
    video = add_working_video(alice, project["id"])

    assert flags(alice_client, project["id"]) == expected(has_working_video=True)
    url = f"/api/projects/{project['id']}"
    response = post_json(alice_client, url, {"current_mode": "overlay"}, method="patch")
    assert response.status_code == 200, response.content
    assert response.json()["current_mode"] == "overlay"
    assert response.json()["working_video"]["id"] == video.id
    assert flags(alice_client, project["id"]) == expected(
        has_working_video=True, current_mode="overlay"
    )
    with in_user_db(alice):
        assert Project.objects.get(pk=project["id"]).current_mode == "overlay"


def test_the_working_video_endpoint(alice, alice_client, project):
    url = f"/api/projects/{project['id']}/working-video"
    missing = alice_client.get(url)
    assert missing.status_code == 404
    assert missing.json()["code"] == "no_working_video"

    video = add_working_video(alice, project["id"])
    response = alice_client.get(url)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == video.id
    assert body["url"] == f"/media/{video.file}"
    assert (body["width"], body["height"], body["duration"]) == (1080, 1920, 2.0)
    assert {"fps", "size_bytes", "created_at"} <= set(body)


def test_an_unknown_mode_is_refused(alice, alice_client, project):
    add_working_video(alice, project["id"])
    url = f"/api/projects/{project['id']}"

    response = post_json(alice_client, url, {"current_mode": "gallery"}, method="patch")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_current_mode"


def test_highlight_regions_are_overlay_edits(alice, alice_client, project):
    video = add_working_video(alice, project["id"])
    url = f"/api/projects/{project['id']}/highlights"

    response = alice_client.put(url, json.dumps({"regions": [region()]}), "application/json")

    assert response.status_code == 200, response.content
    [saved] = response.json()["regions"]
    assert saved["color"] == "#ffd400"
    assert saved["keyframes"] == [{"time": 0.2, "x": 540.0, "y": 960.0, "rx": 120.0, "ry": 160.0}]
    assert response.json()["working_video_id"] == video.id
    assert flags(alice_client, project["id"]) == expected(
        has_working_video=True, has_overlay_edits=True
    )
    got = alice_client.get(url)
    assert got.status_code == 200
    assert got.json()["regions"] == response.json()["regions"]
    with in_user_db(alice):
        assert HighlightRegion.objects.filter(project_id=project["id"]).count() == 1


def test_putting_regions_replaces_them(alice, alice_client, project):
    add_working_video(alice, project["id"])
    moving = [
        {"time": 1.0, "x": 100, "y": 100, "rx": 50, "ry": 50},
        {"time": 1.8, "x": 900, "y": 1800, "rx": 50, "ry": 50},
    ]
    two = [region(), region(effect="brighten_inside", start=1.0, end=2.0, keyframes=moving)]
    assert put_regions(alice_client, project["id"], two).status_code == 200
    assert len(alice_client.get(f"/api/projects/{project['id']}/highlights").json()["regions"]) == 2

    response = put_regions(alice_client, project["id"], [])

    assert response.status_code == 200
    assert response.json()["regions"] == []
    assert flags(alice_client, project["id"]) == expected(has_working_video=True)
    with in_user_db(alice):
        assert not HighlightRegion.objects.exists()


def test_a_final_video_is_listed(alice, alice_client, project):
    add_working_video(alice, project["id"])
    final = add_final_video(alice, project["id"])

    assert flags(alice_client, project["id"]) == expected(
        has_working_video=True, has_final_video=True
    )
    response = alice_client.get(f"/api/projects/{project['id']}/final-videos")
    assert response.status_code == 200
    [listed] = response.json()["final_videos"]
    assert listed["id"] == final.id
    assert listed["url"] == f"/media/{final.file}"


def test_a_project_without_final_videos_lists_none(alice_client, project):
    response = alice_client.get(f"/api/projects/{project['id']}/final-videos")
    assert response.status_code == 200
    assert response.json() == {"final_videos": []}


def test_flags_do_not_leak_between_projects(alice, alice_client, game_clip_path):
    busy = create_project(alice_client, "Busy")
    quiet = create_project(alice_client, "Quiet")
    for _ in range(2):
        clip = upload_clip(alice_client, busy["id"], game_clip_path)
    edit(alice_client, busy["id"], clip["id"])
    add_working_video(alice, busy["id"])
    add_final_video(alice, busy["id"])
    assert put_regions(alice_client, busy["id"], [region()]).status_code == 200

    assert flags(alice_client, quiet["id"]) == expected()
    assert flags(alice_client, busy["id"]) == expected(
        clip_count=2,
        clips_in_progress=1,
        has_working_video=True,
        has_overlay_edits=True,
        has_final_video=True,
    )


@pytest.mark.parametrize("method", ["get", "put"])
def test_highlights_need_a_working_video(alice, alice_client, project, method):
    url = f"/api/projects/{project['id']}/highlights"

    if method == "get":
        response = alice_client.get(url)
    else:
        response = alice_client.put(url, json.dumps({"regions": [region()]}), "application/json")

    assert response.status_code == 409
    assert response.json()["code"] == "working_video_required"
    with in_user_db(alice):
        assert not HighlightRegion.objects.exists()


BAD_REGIONS = {
    "regions missing": None,
    "regions not a list": {"start": 0},
    "region not an object": ["spotlight"],
    "missing effect": [{k: v for k, v in region().items() if k != "effect"}],
    "unknown effect": [region(effect="blur")],
    "bad colour": [region(color="yellow")],
    "short colour": [region(color="#fff")],
    "stroke too wide": [region(stroke_width=41)],
    "fractional stroke": [region(stroke_width=2.5)],
    "bool stroke": [region(stroke_width=True)],
    "end before start": [region(start=1.5, end=0.2)],
    "after the video": [region(end=3.0)],
    "no keyframes": [region(keyframes=[])],
    "centre outside": [region(keyframes=[{"time": 0.2, "x": 1200, "y": 10, "rx": 5, "ry": 5}])],
    "zero radius": [region(keyframes=[{"time": 0.2, "x": 10, "y": 10, "rx": 0, "ry": 5}])],
    "string coordinate": [region(keyframes=[{"time": 0.2, "x": "1", "y": 1, "rx": 5, "ry": 5}])],
    "keyframe outside the span": [
        region(keyframes=[{"time": 1.9, "x": 10, "y": 10, "rx": 5, "ry": 5}])
    ],
    "unsorted keyframes": [
        region(
            keyframes=[
                {"time": 1.0, "x": 10, "y": 10, "rx": 5, "ry": 5},
                {"time": 0.5, "x": 10, "y": 10, "rx": 5, "ry": 5},
            ]
        )
    ],
}


@pytest.mark.parametrize("regions", BAD_REGIONS.values(), ids=BAD_REGIONS.keys())
def test_it_rejects_bad_highlight_regions(alice, alice_client, project, regions):
    add_working_video(alice, project["id"])
    assert put_regions(alice_client, project["id"], [region()]).status_code == 200

    response = put_regions(alice_client, project["id"], regions)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_regions"
    with in_user_db(alice):
        [kept] = HighlightRegion.objects.all()
        assert kept.effect == "dim_outside"


def test_it_limits_the_number_of_regions(alice, alice_client, project, settings):
    settings.MAX_HIGHLIGHT_REGIONS = 2
    add_working_video(alice, project["id"])
    url = f"/api/projects/{project['id']}/highlights"

    response = alice_client.put(url, json.dumps({"regions": [region()] * 3}), "application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_regions"


def test_deleting_a_project_removes_its_rows_and_files(
    alice, alice_client, settings, game_clip_path
):
    doomed = create_project(alice_client, "Doomed")
    kept = create_project(alice_client, "Kept")
    upload_clip(alice_client, doomed["id"], game_clip_path)
    upload_clip(alice_client, doomed["id"], game_clip_path)
    kept_clip = upload_clip(alice_client, kept["id"], game_clip_path)
    add_working_video(alice, doomed["id"])
    add_final_video(alice, doomed["id"])
    assert len(media_files(settings)) == 5
    settings.SNAPSHOT_RETENTION = 1  # no older version may still need the files

    response = alice_client.delete(f"/api/projects/{doomed['id']}")

    assert response.status_code == 204
    # The files go once the delete is committed in a snapshot and no retained version
    # references them.
    assert media_files(settings) == [kept_clip["url"].removeprefix("/media/")]
    with in_user_db(alice):
        assert list(Project.objects.values_list("id", flat=True)) == [kept["id"]]
        assert list(Clip.objects.values_list("id", flat=True)) == [kept_clip["id"]]
        assert not WorkingVideo.objects.exists()
        assert not FinalVideo.objects.exists()
    assert alice_client.get(kept_clip["url"]).status_code == 200
