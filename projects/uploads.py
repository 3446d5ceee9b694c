"""Receiving an uploaded clip: size limit while the body streams in, then probing."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http.multipartparser import MultiPartParserError

from reeleditor.jsonapi import ApiError

from .probe import InvalidVideo, VideoInfo, probe_video


class SizeLimitHandler(FileUploadHandler):
    """Stops reading an upload as soon as it passes MAX_UPLOAD_BYTES.

    First in FILE_UPLOAD_HANDLERS (the CSRF middleware parses multipart bodies before
    any view could add a handler).
    The ASGI size guard (reeleditor/asgi.py) refuses bodies whose Content-Length is too
    large before they are read; this catches chunked bodies that announce no length.
    """

    exceeded = False

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.MAX_UPLOAD_BYTES:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


def too_large_error() -> ApiError:
    limit_mb = settings.MAX_UPLOAD_BYTES / 1024**2
    return ApiError(
        f"The file is larger than the {limit_mb:,.0f} MB upload limit.", "upload_too_large", 413
    )


def receive_clip(request):
    """The uploaded file and its probe, or ApiError. Nothing is stored here."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:  # Django reads no body for an unusable length either
        declared = 0
    if declared > settings.MAX_UPLOAD_BYTES:
        raise too_large_error()
    try:
        uploaded = request.FILES.get("file")
    except MultiPartParserError:
        # Usually the CSRF check parses the body first and Django answers 400 there;
        # the same 400 here, where the view is the first to parse it.
        raise ApiError("The upload is not a valid multipart body.", "bad_request") from None
    if any(getattr(h, "exceeded", False) for h in request.upload_handlers):
        raise too_large_error()
    if uploaded is None:
        raise ApiError("Attach the video as the multipart field 'file'.", "file_missing")
    if uploaded.size > settings.MAX_UPLOAD_BYTES:
        raise too_large_error()
    if uploaded.size == 0:
        raise ApiError("The uploaded file is empty.", "invalid_video")
    try:
        info: VideoInfo = probe_video(uploaded.temporary_file_path())
    except InvalidVideo as exc:
        raise ApiError(str(exc), "invalid_video") from None
    return uploaded, info
