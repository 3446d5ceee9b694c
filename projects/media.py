"""Media files (uploaded clips, rendered videos): storage names, ownership and serving.

Every file lives in Django's default storage (a local folder, or S3 when S3_BUCKET is
set) under ``users/<user id>/``. Names are generated here (``<kind>/<uuid>.<ext>``); a
client's filename never becomes part of a path. The browser reaches a file only through
``/media/<name>``, which checks that the name is well formed and belongs to the
signed-in user before serving it: locally with HTTP Range (video seeking), on S3 by a
redirect to a short-lived presigned URL.
"""

import asyncio
import mimetypes
import re
import uuid

from django.core.files.storage import default_storage
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header

from syncstore import mediagc

KINDS = ("clips", "working", "final", "thumbs", "games")
EXTENSIONS = ("mp4", "mov", "mkv", "webm", "avi", "jpg")
_NAME_RE = re.compile(
    rf"^users/(?P<user_id>[1-9][0-9]*)/(?:{'|'.join(KINDS)})/[0-9a-f]{{32}}\.(?:{'|'.join(EXTENSIONS)})$"
)
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK_SIZE = 256 * 1024


def new_name(user_id: int, kind: str, extension: str) -> str:
    if kind not in KINDS or extension not in EXTENSIONS:
        raise ValueError(f"unsupported media kind or extension: {kind}/{extension}")
    return f"users/{int(user_id)}/{kind}/{uuid.uuid4().hex}.{extension}"


def owner_of(name: str) -> int | None:
    """The user id a well-formed media name belongs to, or None for anything else."""
    match = _NAME_RE.fullmatch(name)  # not match(): "$" also matches before a final "\n"
    return int(match["user_id"]) if match else None


def save(name: str, content) -> str:
    """Store ``content`` (a Django File) under ``name``; returns the stored name."""
    stored = default_storage.save(name, content)
    if stored != name:  # storage renamed it: the generated name must be unique
        default_storage.delete(stored)
        raise RuntimeError(f"media name collision for {name}")
    return stored


def delete(name: str) -> None:
    default_storage.delete(name)


def url_for(name: str) -> str:
    return reverse("media", kwargs={"name": name})


def delete_after_commit(names, using: str) -> None:
    """Remove files once the deletion of the rows pointing at them is committed in a
    snapshot and no retained version still references them (syncstore.mediagc)."""
    mediagc.drop_after_commit(names, using=using)


def serve(request, name: str, *, allowed_user_ids) -> HttpResponse:
    """Serve media ``name`` if it belongs to one of ``allowed_user_ids``, else 404."""
    owner = owner_of(name)
    if owner is None or owner not in allowed_user_ids or not default_storage.exists(name):
        # 404, not 403: another user's file must look exactly like a missing one.
        raise Http404("No such media file.")
    download = _download_name(request.GET.get("download"))
    try:
        path = default_storage.path(name)
    except NotImplementedError:  # remote storage: let the object store serve the bytes
        return HttpResponseRedirect(_remote_url(name, download))
    response = ranged_file_response(request, path)
    if download:
        response["Content-Disposition"] = content_disposition_header(True, download)
    return response


def _download_name(value) -> str | None:
    """``?download=<name>``: save as this file name (sanitised: it only labels the file).

    Browsers ignore ``<a download>`` for another origin (a presigned S3 URL), so the
    server asks for an attachment itself.
    """
    if not value:
        return None
    cleaned = "".join(ch for ch in str(value) if ch.isalnum() or ch in "._- ")[:120].strip()
    return cleaned or "video.mp4"


def _remote_url(name: str, download: str | None) -> str:
    if not download:
        return default_storage.url(name)
    disposition = content_disposition_header(True, download)
    return default_storage.url(name, parameters={"ResponseContentDisposition": disposition})


def ranged_file_response(request, path) -> HttpResponse:
    """A file response honouring a single ``Range: bytes=...`` header (RFC 9110)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
    content_type = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    byte_range = parse_range(request.headers.get("Range", ""), size)
    if byte_range == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = byte_range or (0, size - 1)
    length = max(0, end - start + 1)
    response = StreamingHttpResponse(
        _stream(request, path, start, length),
        content_type=content_type,
        status=206 if byte_range else 200,
    )
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def parse_range(header: str, size: int):
    """``(start, end)`` inclusive, None to send the whole file, or "unsatisfiable".

    Malformed and multi-range headers are ignored (the whole file is a valid answer);
    a range that starts past the end or ends before it starts is unsatisfiable.
    """
    match = _RANGE_RE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return None
    try:
        first = int(match[1]) if match[1] else None
        last = int(match[2]) if match[2] else None
    except ValueError:  # more digits than int() accepts: ignore, like a malformed header
        return None
    if first is None:  # suffix range: the last N bytes
        if last == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - last), size - 1
    start = first
    end = last if last is not None else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _stream(request, path, start: int, length: int):
    # Under ASGI Django would collect a synchronous iterator into memory before
    # sending it; videos are large, so give it an asynchronous one there.
    if isinstance(request, ASGIRequest):
        return _read_async(path, start, length)
    return _read_sync(path, start, length)


def _read_sync(path, start, length):
    with open(path, "rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK_SIZE, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


async def _read_async(path, start, length):
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(handle.seek, start)
        while length > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()
