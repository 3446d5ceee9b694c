"""Resumable, chunked uploads of whole games (1-3 hours, 2-8 GB from a phone).

The browser announces the file (``begin``), sends it in fixed-size chunks in any order
(a chunk sent twice is harmless), may pause, lose the connection or close the tab and
ask which chunks arrived (``Upload.received``), and finally asks to ``assemble`` it.

The state lives in media storage, never in a process, so any web instance takes the
next chunk and a server restarted between two chunks loses nothing:

* ``users/<id>/uploads/<upload id>/upload.json``: what was announced;
* ``users/<id>/uploads/<upload id>/<index>.chunk``: one object per chunk received.

A chunk counts as received exactly when its object exists. It is written to a
temporary file first, its length (and checksum, when the client sends one) checked,
and then stored in one step: ``os.replace`` on a local folder, one PUT on S3. A crash
never leaves half a chunk that looks whole.

Assembling makes ``users/<id>/games/<upload id>.<ext>``: a concatenation on a local
folder, or an S3 multipart upload whose parts are server-side copies of the chunks (no
byte passes through the app again; parts are at least 5 MiB, so chunks are too). The
name is the upload's, so assembling twice (a lost answer, a retried request) finds the
file already there instead of making a second one.
"""

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from projects.probe import InvalidVideo, demuxer_for_head

EXTENSIONS = ("mp4", "mov", "mkv", "webm", "avi")
UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_CHUNK_RE = re.compile(r"^(\d{6})\.chunk$")
S3_MIN_PART_BYTES = 5 * 1024 * 1024
_READ_BYTES = 256 * 1024


class UploadError(Exception):
    """A request the protocol refuses; ``code`` is the API's error code."""

    def __init__(self, message: str, code: str, status: int = 400):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


class UploadNotFound(Exception):
    """No such upload for this user (never started, finished, abandoned, or another's)."""


@dataclass(frozen=True)
class Upload:
    id: str
    user_id: int
    filename: str  # for display only, never a path
    extension: str
    size: int
    chunk_size: int
    created_at: str  # ISO 8601

    @property
    def chunk_count(self) -> int:
        return math.ceil(self.size / self.chunk_size)

    @property
    def folder(self) -> str:
        return f"users/{self.user_id}/uploads/{self.id}"

    @property
    def game_file(self) -> str:
        """Where the assembled game goes (a media name: see projects.media)."""
        return f"users/{self.user_id}/games/{self.id}.{self.extension}"

    def chunk_name(self, index: int) -> str:
        return f"{self.folder}/{index:06d}.chunk"

    def expected_length(self, index: int) -> int:
        if index == self.chunk_count - 1:
            return self.size - self.chunk_size * index
        return self.chunk_size

    def received(self) -> list[int]:
        """The indexes of the chunks stored so far, in order."""
        try:
            _dirs, files = default_storage.listdir(self.folder)
        except FileNotFoundError:
            return []
        found = (_CHUNK_RE.fullmatch(name) for name in files)
        return sorted(int(m[1]) for m in found if m and int(m[1]) < self.chunk_count)

    def missing(self) -> list[int]:
        have = set(self.received())
        return [i for i in range(self.chunk_count) if i not in have]

    def bytes_received(self, received: list[int]) -> int:
        return sum(self.expected_length(i) for i in received)

    def to_dict(self) -> dict:
        received = self.received()
        return {
            "id": self.id,
            "filename": self.filename,
            "size": self.size,
            "chunk_size": self.chunk_size,
            "chunk_count": self.chunk_count,
            "received": received,
            "bytes_received": self.bytes_received(received),
            "created_at": self.created_at,
        }


# --- Starting and finding an upload -----------------------------------------------------


def chunk_size() -> int:
    """The chunk size for new uploads: S3 multipart parts must be at least 5 MiB."""
    size = settings.GAME_UPLOAD_CHUNK_BYTES
    return max(size, S3_MIN_PART_BYTES) if _is_remote() else size


def begin(user_id: int, filename: str, size: int) -> Upload:
    extension = _extension_of(filename)
    if size > settings.MAX_GAME_UPLOAD_BYTES:
        limit = settings.MAX_GAME_UPLOAD_BYTES / 1024**3
        raise UploadError(
            f"This file is too large: a game may be at most {limit:g} GB.", "upload_too_large", 413
        )
    upload = Upload(
        id=uuid.uuid4().hex,
        user_id=int(user_id),
        filename=filename,
        extension=extension,
        size=size,
        chunk_size=chunk_size(),
        created_at=timezone.now().isoformat(),
    )
    manifest = json.dumps(asdict(upload)).encode()
    default_storage.save(f"{upload.folder}/upload.json", ContentFile(manifest))
    return upload


def _extension_of(filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in EXTENSIONS:
        raise UploadError(
            "This file is not a video in a supported format. "
            "Please upload an MP4, MOV, MKV, WebM or AVI file.",
            "invalid_video",
        )
    return extension


def load(user_id: int, upload_id: str) -> Upload:
    """The user's upload ``upload_id``; UploadNotFound for anything else (another user's
    id names a folder under *their* prefix, never looked at here)."""
    if not UPLOAD_ID_RE.fullmatch(upload_id or ""):
        raise UploadNotFound
    name = f"users/{int(user_id)}/uploads/{upload_id}/upload.json"
    try:
        with default_storage.open(name, "rb") as handle:
            data = json.loads(handle.read())
    except (FileNotFoundError, OSError, ValueError):
        raise UploadNotFound from None
    upload = Upload(**data)
    if upload.user_id != int(user_id) or upload.id != upload_id:
        raise UploadNotFound
    return upload


# --- Receiving a chunk ------------------------------------------------------------------


def store_chunk(upload: Upload, index: int, body, declared_sha256: str | None = None) -> None:
    """Read chunk ``index`` from ``body`` (a file-like request stream) and store it.

    The chunk must have exactly its expected length; a wrong checksum, a short or long
    body or (for the first chunk) bytes that are not the start of a video are refused
    and nothing is stored. A chunk already stored is replaced by the same bytes.
    """
    if not 0 <= index < upload.chunk_count:
        raise UploadError(
            f"Chunk {index} is outside this upload (0 to {upload.chunk_count - 1}).",
            "invalid_chunk",
        )
    expected = upload.expected_length(index)
    with tempfile.NamedTemporaryFile(prefix="chunk-", dir=_scratch_dir()) as tmp:
        digest, length = _copy_bounded(body, tmp, expected)
        if length != expected:
            raise UploadError(
                f"Chunk {index} must be {expected} bytes; {length} arrived.", "invalid_chunk"
            )
        if declared_sha256 and declared_sha256.lower() != digest:
            raise UploadError(
                f"Chunk {index} arrived damaged (its checksum does not match). Send it again.",
                "chunk_corrupt",
            )
        if index == 0:
            _check_looks_like_video(tmp)
        tmp.flush()
        _store(upload.chunk_name(index), Path(tmp.name))


def _copy_bounded(body, out, expected: int) -> tuple[str, int]:
    """Copy at most ``expected + 1`` bytes (enough to tell a long body); hash them."""
    digest = hashlib.sha256()
    length = 0
    while length <= expected:
        piece = body.read(min(_READ_BYTES, expected + 1 - length))
        if not piece:
            break
        digest.update(piece)
        out.write(piece)
        length += len(piece)
    return digest.hexdigest(), length


def _check_looks_like_video(tmp) -> None:
    tmp.seek(0)
    try:
        demuxer_for_head(tmp.read(16))
    except InvalidVideo as exc:
        raise UploadError(str(exc), "invalid_video") from None


def _scratch_dir() -> str:
    path = Path(settings.REELEDITOR_DATA_DIR) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _store(name: str, path: Path) -> None:
    """Store the file at ``path`` as ``name`` in one step, replacing any earlier one."""
    if _is_remote():
        _s3_client().upload_file(str(path), default_storage.bucket_name, _s3_key(name))
        return
    target = Path(default_storage.path(name))
    target.parent.mkdir(parents=True, exist_ok=True)
    # A hard link keeps the temporary file's own clean-up; same filesystem as the target
    # is not guaranteed (the scratch folder may be elsewhere), so copy next to it first.
    staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    shutil.copyfile(path, staged)
    _fsync(staged)
    os.replace(staged, target)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Assembling and discarding ------------------------------------------------------------


def assemble(upload: Upload) -> str:
    """Join the chunks into the game's file; returns its media name.

    Refused (``upload_incomplete``, with the missing indexes) until every chunk is
    there. The chunks are removed once the file is complete.
    """
    if not default_storage.exists(upload.game_file):
        missing = upload.missing()
        if missing:
            raise UploadError(
                f"{len(missing)} of {upload.chunk_count} chunks have not arrived yet.",
                "upload_incomplete",
                409,
            )
        if _is_remote():
            _assemble_on_s3(upload)
        else:
            _assemble_locally(upload)
    return upload.game_file


def _assemble_locally(upload: Upload) -> None:
    target = Path(default_storage.path(upload.game_file))
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        with open(staged, "wb") as out:
            for index in range(upload.chunk_count):
                with open(default_storage.path(upload.chunk_name(index)), "rb") as chunk:
                    shutil.copyfileobj(chunk, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        if staged.stat().st_size != upload.size:
            raise UploadError("The upload's chunks do not add up to its size.", "invalid_chunk")
        os.replace(staged, target)  # whole, or not there at all
    finally:
        staged.unlink(missing_ok=True)


def _assemble_on_s3(upload: Upload) -> None:
    client, bucket = _s3_client(), default_storage.bucket_name
    key = _s3_key(upload.game_file)
    started = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType="video/mp4")
    upload_id = started["UploadId"]
    try:
        parts = []
        for index in range(upload.chunk_count):
            copied = client.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=index + 1,
                CopySource={"Bucket": bucket, "Key": _s3_key(upload.chunk_name(index))},
            )
            parts.append({"PartNumber": index + 1, "ETag": copied["CopyPartResult"]["ETag"]})
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def discard(upload: Upload) -> None:
    """Remove the upload's chunks and manifest (not an assembled game file)."""
    _delete_folder(upload.folder)


def _delete_folder(folder: str) -> None:
    try:
        _dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        if name != "upload.json":
            default_storage.delete(f"{folder}/{name}")
    # The manifest last: while it exists the upload can still be found and discarded.
    default_storage.delete(f"{folder}/upload.json")
    if not _is_remote():
        shutil.rmtree(default_storage.path(folder), ignore_errors=True)


def sweep_abandoned(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Discard uploads started longer than ``older_than`` ago; returns how many.

    An upload is abandoned when nobody finished it (a closed tab that never came back)
    and nothing arrived for that long either. Run
    by ``manage.py sweep_game_uploads`` (and its schedule): see the README.
    """
    cutoff = (now or timezone.now()) - older_than
    swept = 0
    for user_folder in _listdirs("users"):
        for upload_id in _listdirs(f"users/{user_folder}/uploads"):
            if not (user_folder.isdigit() and UPLOAD_ID_RE.fullmatch(upload_id)):
                continue
            try:
                upload = load(int(user_folder), upload_id)
            except UploadNotFound:
                _delete_folder(f"users/{user_folder}/uploads/{upload_id}")  # no manifest
                swept += 1
                continue
            if _last_activity(upload) < cutoff:
                discard(upload)
                swept += 1
    return swept


def _last_activity(upload: Upload) -> datetime:
    """When the upload last received something: a slow 8 GB upload is not abandoned."""
    started = datetime.fromisoformat(upload.created_at)
    received = upload.received()
    if not received:
        return started
    # Chunks are often sent in order: the highest index is usually the latest.
    return max(started, default_storage.get_modified_time(upload.chunk_name(received[-1])))


def _listdirs(folder: str) -> list[str]:
    try:
        dirs, _files = default_storage.listdir(folder)
    except FileNotFoundError:
        return []
    return dirs


# --- Where the storage is ---------------------------------------------------------------


def _is_remote() -> bool:
    try:
        default_storage.path("probe")
    except NotImplementedError:
        return True
    return False


def _s3_client():
    return default_storage.connection.meta.client


def _s3_key(name: str) -> str:
    return default_storage._normalize_name(name)
