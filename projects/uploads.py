"""Receiving an uploaded clip: size limit while the body streams in, then probing."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from reeleditor.jsonapi import ApiError
from reeleditor.request_limits import (
    declared_too_large,
    parse_content_length,
    upload_too_large_message,
)

from .probe import InvalidVideo, probe_video


class SizeLimitHandler(FileUploadHandler):
    """Stops parsing an upload as soon as one file passes MAX_UPLOAD_BYTES.

    The declared Content-Length (checked by the ASGI guard and by ``receive_clip``)
    includes the multipart framing, so only this count of the file's own bytes is
    exact. First in FILE_UPLOAD_HANDLERS: the CSRF middleware parses multipart bodies
    before any view could add a handler.
    """

    exceeded = False
    received = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
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
    return ApiError(upload_too_large_message(), "upload_too_large", 413)


def receive_clip(request):
    """The uploaded file and its probe, or ApiError. Nothing is stored here."""
    if declared_too_large(parse_content_length(request.META.get("CONTENT_LENGTH"))):
        raise too_large_error()
    uploaded = request.FILES.get("file")  # a broken body: api_view answers 400
    if any(getattr(h, "exceeded", False) for h in request.upload_handlers):
        raise too_large_error()
    if uploaded is None:
        raise ApiError("Attach the video as the multipart field 'file'.", "file_missing")
    if uploaded.size > settings.MAX_UPLOAD_BYTES:
        raise too_large_error()
    if uploaded.size == 0:
        raise ApiError("The uploaded file is empty.", "invalid_video")
    try:
        info = probe_video(uploaded.temporary_file_path())
    except InvalidVideo as exc:
        raise ApiError(str(exc), "invalid_video") from None
    return uploaded, info
