"""The account page and what it leads to: delete my account, export my data.

Thin views: the rules are in ``accounts.deletion`` and ``accounts.dataexport``.
"""

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate, logout
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reeleditor.jsonapi import error_response

from . import dataexport, deletion
from .models import DataExport


class ConfirmWithPasswordForm(forms.Form):
    password = forms.CharField(
        label="Your password", strip=False, widget=forms.PasswordInput(attrs={"autofocus": True})
    )


@require_GET
def account(request):
    exports = [dataexport.refresh(e) for e in DataExport.objects.filter(user=request.user)[:5]]
    expiry_hours = max(1, round(settings.DATA_EXPORT_EXPIRY_SECONDS / 3600))
    context = {"exports": exports, "expiry_hours": expiry_hours}
    return render(request, "accounts/account.html", context)


@require_http_methods(["GET", "POST"])
def delete_account(request):
    form = ConfirmWithPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        password = form.cleaned_data["password"]
        # Through authenticate(), so wrong passwords count towards the sign-in lockout.
        if authenticate(request, username=request.user.get_username(), password=password):
            deletion.request_deletion(request.user, password)
            logout(request)
            return redirect("account_deleted")
        form.add_error("password", "That is not your password.")
    days = max(1, round(settings.ACCOUNT_PURGE_GRACE_SECONDS / 86400))
    return render(request, "accounts/delete_account.html", {"form": form, "days": days})


@login_not_required
@require_GET
def account_deleted(request):
    purge_on = deletion.purge_date(timezone.now())
    return render(request, "accounts/account_deleted.html", {"purge_on": purge_on})


# --- Export my data --------------------------------------------------------------------


@require_POST
def start_data_export(request):
    export = dataexport.start(request.user)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(dataexport.as_dict(export), status=202)
    return redirect("account")  # the form without JavaScript


@require_GET
def data_export_status(request, export_id):
    export = DataExport.objects.filter(pk=export_id, user=request.user).first()
    if export is None:  # another user's looks exactly like a missing one
        return error_response("No such data export.", "not_found", 404)
    return JsonResponse(dataexport.as_dict(dataexport.refresh(export)))


@require_GET
def download_data_export(request, export_id):
    export = dataexport.refresh(DataExport.objects.filter(pk=export_id, user=request.user).first())
    export = dataexport.take_for_download(request.user, export_id) if export else None
    if export is None:
        raise Http404("No data export ready to download: it was downloaded, or has expired.")
    response = StreamingHttpResponse(
        dataexport.stream_then_delete(export), content_type="application/zip"
    )
    stamp = export.created_at.strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="reel-editor-data-{stamp}.zip"'
    response["Content-Length"] = str(export.size)
    response["Cache-Control"] = "no-store"
    return response
