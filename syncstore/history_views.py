"""The History pages: the retained versions of the signed-in user's data, one version
read-only, and restoring one as a new version.

Thin views: the rules are in ``syncstore.history``. The restore is a plain form POST
(CSRF, the user's own versions only); a client asking for JSON gets the API's answers
(``{"error", "code"}`` with a 4xx/5xx status), a browser a message on the history page.
"""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from reeleditor.jsonapi import error_response

from . import history, sync
from .binding import current_user_id


@require_GET
def index(request):
    entries = history.versions(current_user_id())
    undo = None
    if len(entries) > 1 and entries[0].restored_from is not None:
        undo = entries[1].version  # the version just before the restore
    context = {"entries": entries, "undo": undo, "retention": settings.SNAPSHOT_RETENTION}
    return render(request, "syncstore/history.html", context)


@require_GET
def version(request, version):
    try:
        preview = history.preview(current_user_id(), version)
    except history.VersionNotFound:
        raise Http404("No such version of your data.") from None
    except sync.SyncUnavailable as exc:
        context = {"version": version, "error": f"This version cannot be loaded right now: {exc}"}
        return render(request, "syncstore/version.html", context, status=503)
    return render(request, "syncstore/version.html", {"version": version, "preview": preview})


@require_POST
def restore(request, version):
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    try:
        restored = history.restore(current_user_id(), version)
    except history.VersionNotFound:
        if wants_json:
            return error_response("No such version of your data.", "not_found", 404)
        raise Http404("No such version of your data.") from None
    except history.RestoreRefused as exc:
        return _refused(request, wants_json, str(exc), exc.code, 409)
    except sync.SyncUnavailable as exc:
        message = f"Nothing was restored: your data cannot be loaded right now ({exc})."
        return _refused(request, wants_json, message, "sync_unavailable", 503)
    result = restored.result
    if result.status == sync.Status.CONFLICT:
        return _refused(request, wants_json, result.error, "conflict", 409)
    if result.status != sync.Status.OK:
        message = (
            f"Version {version} is restored on this machine but not saved yet "
            f"({result.error}); it will be retried."
        )
        return _refused(request, wants_json, message, "sync_failed", 503)
    if wants_json:
        data = {
            "version": restored.version,
            "restored_from": restored.restored_from,
            "missing_media": restored.missing_media,
        }
        return JsonResponse(data)
    messages.success(request, f"Restored version {version} as version {restored.version}.")
    if restored.missing_media:
        messages.warning(
            request, f"{len(restored.missing_media)} media file(s) it uses are missing."
        )
    return redirect("history:index")


def _refused(request, wants_json, message, code, status):
    if wants_json:
        return error_response(message, code, status)
    messages.error(request, message)
    return redirect("history:index")
