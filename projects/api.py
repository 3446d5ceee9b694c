"""The projects JSON API. Views stay thin: look up the user's object, validate, call the
domain, answer. Every query here runs on the signed-in user's own database, so another
user's ids simply do not exist (404)."""

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone

from reeleditor.jsonapi import ApiError, api_view, json_body
from sharing import links
from syncstore.binding import current_binding
from syncstore.middleware import stores_files_first, take_write_lease

from . import media, presets
from .clips import (
    ClipLimitReached,
    PlaysRefused,
    ProjectGone,
    add_clip,
    add_play_clips,
    clean_play_ids,
    display_name,
)
from .edits import (
    EditError,
    clean_crop_keyframes,
    clean_highlight_regions,
    clean_segments,
    clean_trim,
)
from .models import Clip, HighlightRegion, Project
from .uploads import receive_clip


def _project(project_id) -> Project:
    return get_object_or_404(Project.objects.with_status(), pk=project_id)


def _edit_error(exc: EditError) -> ApiError:
    return ApiError(exc.message, "invalid_" + exc.field, field=exc.field)


def _clean_name(data) -> str:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError("Give the project a name.", "invalid_name", field="name")
    if len(name.strip()) > 200:
        raise ApiError("Project names are at most 200 characters.", "invalid_name", field="name")
    return name.strip()


def _clean_aspect_ratio(data) -> str:
    aspect = data.get("aspect_ratio")
    if aspect not in Project.AspectRatio.values:
        choices = ", ".join(Project.AspectRatio.values)
        raise ApiError(
            f"Aspect ratio must be one of {choices}.", "invalid_aspect_ratio", field="aspect_ratio"
        )
    return aspect


def project_detail_dict(project: Project) -> dict:
    data = project.to_dict()
    data["clips"] = [clip.to_dict() for clip in project.clips.all()]
    data["working_video"] = project.working_video.to_dict() if project.working_video else None
    data["final_resolution"] = project.final_resolution
    data["final_quality"] = project.final_quality
    data["title_card"] = presets.title_card_of(project)
    return data


@api_view("GET", "POST")
def projects(request):
    if request.method == "GET":
        return JsonResponse({"projects": [p.to_dict() for p in Project.objects.with_status()]})
    data = json_body(request)
    name, aspect = _clean_name(data), _clean_aspect_ratio(data)
    if "play_ids" in data:  # a reel made from marked plays: all of it, or nothing
        with transaction.atomic(using=current_binding().alias):
            project = Project.objects.create(name=name, aspect_ratio=aspect)
            _add_plays(project, data["play_ids"])
    else:
        project = Project.objects.create(name=name, aspect_ratio=aspect)
    return JsonResponse(_project(project.pk).to_dict(), status=201)


def _add_plays(project, play_ids) -> list:
    try:
        return add_play_clips(project, clean_play_ids(play_ids))
    except PlaysRefused as exc:
        raise ApiError(exc.message, "invalid_play_ids", field="play_ids") from None
    except ClipLimitReached:
        raise _too_many_clips() from None


@api_view("POST")
def clips_from_plays(request, project_id):
    """``{play_ids}``: add the plays to the project as clips, in that order."""
    project = _project(project_id)
    clips = _add_plays(project, json_body(request).get("play_ids"))
    return JsonResponse({"clips": [clip.to_dict() for clip in clips]}, status=201)


@api_view("GET", "PATCH", "DELETE")
def project(request, project_id):
    project = _project(project_id)
    if request.method == "GET":
        return JsonResponse(project_detail_dict(project))
    if request.method == "DELETE":
        return _delete_project(project)
    data = json_body(request)
    with transaction.atomic(using=current_binding().alias):
        if "name" in data:
            project.name = _clean_name(data)
        if "aspect_ratio" in data:
            project.aspect_ratio = _clean_aspect_ratio(data)
            _check_crops_allow_aspect_change(project)
        if "current_mode" in data:
            project.current_mode = _clean_mode(project, data["current_mode"])
        if "clip_order" in data:
            _reorder_clips(project, data["clip_order"])
        _apply_presets(project, data)
        project.save()
    return JsonResponse(project_detail_dict(_project(project.pk)))


def _apply_presets(project, data) -> None:
    try:
        if "final_resolution" in data:
            project.final_resolution = presets.clean_resolution(data["final_resolution"])
        if "final_quality" in data:
            project.final_quality = presets.clean_quality(data["final_quality"])
        if "title_card" in data:
            # A partial card updates the saved one: the form may send one field.
            saved = presets.title_card_of(project)
            if not isinstance(data["title_card"], dict):
                raise presets.PresetError("title_card must be an object.", "title_card")
            project.title_card = presets.clean_title_card({**saved, **data["title_card"]})
    except presets.PresetError as exc:
        raise ApiError(exc.message, f"invalid_{exc.field}", field=exc.field) from None


def _check_crops_allow_aspect_change(project) -> None:
    # Crop rectangles are drawn in the project's shape; an export would stretch them.
    shaped = [c for c in project.clips.all() if c.crop_keyframes]
    if shaped and project.aspect_ratio != Project.objects.get(pk=project.pk).aspect_ratio:
        raise ApiError(
            "Clear the clips' crop keyframes before changing the aspect ratio.",
            "aspect_ratio_locked",
            409,
        )


def _clean_mode(project, mode) -> str:
    if mode not in Project.Mode.values:
        raise ApiError(
            "Mode must be framing or overlay.", "invalid_current_mode", field="current_mode"
        )
    if mode == Project.Mode.OVERLAY and project.working_video_id is None:
        raise ApiError("Export required for overlay mode.", "working_video_required", 409)
    return mode


def _reorder_clips(project, order) -> None:
    clips = {clip.id: clip for clip in project.clips.all()}
    valid = (
        isinstance(order, list)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in order)
        and sorted(order) == sorted(clips)
    )
    if not valid:
        raise ApiError(
            "clip_order must list each of the project's clip ids once.", "invalid_clip_order"
        )
    for position, clip_id in enumerate(order):
        clips[clip_id].position = position
    Clip.objects.bulk_update(clips.values(), ["position"])


def _delete_project(project) -> JsonResponse:
    alias = current_binding().alias
    # Its final videos' share links stop working now (central database).
    links.revoke_for_videos(
        current_binding().user_id, project.final_videos.values_list("id", flat=True)
    )
    with transaction.atomic(using=alias):
        names = [clip.file for clip in project.clips.all() if clip.owns_file]
        names += [v.file for v in project.working_videos.all()]
        names += [name for v in project.final_videos.all() for name in (v.file, v.poster) if name]
        project.delete()
        media.delete_after_commit(names, using=alias)
    return HttpResponse(status=204)


@api_view("POST")
def open_project(request, project_id):
    """The editor opened this project: remember when, for the projects list."""
    Project.objects.filter(pk=_project(project_id).pk).update(last_opened_at=timezone.now())
    return JsonResponse(project_detail_dict(_project(project_id)))


@stores_files_first
@api_view("POST")
def upload_clip(request, project_id):
    project = _project(project_id)
    if project.clip_count >= settings.MAX_CLIPS_PER_PROJECT:
        raise _too_many_clips()  # before reading and probing a file we would refuse
    uploaded, info = receive_clip(request)
    try:
        clip = add_clip(
            project,
            uploaded,
            uploaded.name,
            info,
            before_writing=lambda: take_write_lease(request),
        )
    except ClipLimitReached:
        raise _too_many_clips() from None
    except ProjectGone:
        raise ApiError("The project was deleted meanwhile.", "not_found", 404) from None
    return JsonResponse(clip.to_dict(), status=201)


def _too_many_clips() -> ApiError:
    limit = settings.MAX_CLIPS_PER_PROJECT
    return ApiError(f"A project holds at most {limit} clips.", "too_many_clips")


@api_view("PATCH", "DELETE")
def clip(request, project_id, clip_id):
    project = _project(project_id)
    clip = get_object_or_404(project.clips, pk=clip_id)
    if request.method == "DELETE":
        alias = current_binding().alias
        with transaction.atomic(using=alias):
            clip.delete()
            if clip.owns_file:  # a game's clip leaves the game's video alone
                media.delete_after_commit([clip.file], using=alias)
        return HttpResponse(status=204)
    data = json_body(request)
    try:
        _apply_framing_edits(project, clip, data)
    except EditError as exc:
        raise _edit_error(exc) from None
    clip.save()
    return JsonResponse(clip.to_dict())


def _apply_framing_edits(project, clip, data) -> None:
    changed = False
    earliest, latest = clip.bounds
    if "crop_keyframes" in data:
        clip.crop_keyframes = clean_crop_keyframes(
            data["crop_keyframes"],
            frame_width=clip.width,
            frame_height=clip.height,
            duration=latest,
            earliest=earliest,
            aspect=project.aspect_value,
        )
        changed = True
    if "trim" in data:
        start, end = clean_trim(data["trim"], duration=latest, earliest=earliest)
        # A game's clip is never "untrimmed": that would be the whole game.
        clip.trim_start, clip.trim_end = (
            (start, end) if start is not None or clip.owns_file else (earliest, latest)
        )
        changed = True
    if "segments" in data:
        clip.segments = clean_segments(data["segments"], duration=latest, earliest=earliest)
        changed = True
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise EditError("A clip name must be a non-empty string.", "name")
        clip.name = display_name(data["name"])
    if changed:
        clip.edited_at = timezone.now()


@api_view("GET", "PUT")
def highlights(request, project_id):
    project = _project(project_id)
    video = project.working_video
    if video is None:
        raise ApiError("Export required for overlay mode.", "working_video_required", 409)
    if request.method == "PUT":
        data = json_body(request)
        try:
            regions = clean_highlight_regions(
                data.get("regions"),
                frame_width=video.width,
                frame_height=video.height,
                duration=video.duration,
            )
        except EditError as exc:
            raise _edit_error(exc) from None
        _replace_regions(project, regions)
    return JsonResponse(
        {
            "working_video_id": video.id,
            "regions": [r.to_dict() for r in project.highlight_regions.all()],
        }
    )


def _replace_regions(project, regions) -> None:
    with transaction.atomic(using=current_binding().alias):
        project.highlight_regions.all().delete()
        HighlightRegion.objects.bulk_create(
            HighlightRegion(project=project, position=i, **region)
            for i, region in enumerate(regions)
        )


@api_view("GET")
def working_video(request, project_id):
    project = _project(project_id)
    if project.working_video is None:
        raise ApiError(
            "This project has no working video yet: export it first.", "no_working_video", 404
        )
    return JsonResponse(project.working_video.to_dict())


@api_view("GET")
def final_videos(request, project_id):
    project = _project(project_id)
    return JsonResponse({"final_videos": [v.to_dict() for v in project.final_videos.all()]})
