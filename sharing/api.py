"""The owner's side of share links: list and make a final video's links, revoke one."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from projects.models import Project
from reeleditor.jsonapi import ApiError, api_view, json_body

from . import links
from .models import ShareLink


@api_view("GET", "POST")
def video_links(request, project_id, video_id):
    # In the signed-in user's own database: another user's ids do not exist (404).
    project = get_object_or_404(Project, pk=project_id)
    video = get_object_or_404(project.final_videos, pk=video_id)
    if request.method == "POST":
        data = json_body(request)
        try:
            expires_at = links.clean_expiry(data.get("expires_in_days"))
            link = links.create(request.user, project, video, expires_at=expires_at)
        except links.ShareRefused as exc:
            raise ApiError(exc.message, exc.code) from None
        return JsonResponse(links.to_dict(link, request), status=201)
    found = links.links_of(request.user, video.id)
    return JsonResponse({"links": [links.to_dict(link, request) for link in found]})


@api_view("DELETE")
def link(request, link_id):
    """Revoke: the link's page, video and poster answer 404 from now on."""
    found = get_object_or_404(ShareLink, pk=link_id, user=request.user)
    return JsonResponse(links.to_dict(links.revoke(found), request))
