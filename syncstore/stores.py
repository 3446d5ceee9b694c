"""Durable object stores for per-user database snapshots.

A snapshot is an immutable object under a key such as
``snapshots/12/0000000003-<32 hex>.sqlite3.z``. The store only moves bytes: which key is
the committed one is decided by the registry row in the central database (see
docs/architecture.md), never by the store.

Two backends share one contract: ``S3SnapshotStore`` (AWS S3, R2, MinIO, moto) when
``S3_BUCKET`` is set, ``LocalSnapshotStore`` (a folder) otherwise. The error contract
matters more than anything else here: ``SnapshotMissing`` means the store answered
definitely that the key does not exist, ``StoreError`` means we do not know. A caller
may treat only the first as "no snapshot"; treating an outage as "no snapshot" would
let an empty database overwrite a user's data.
"""

import os
import re
import shutil
import stat
import threading
from collections import OrderedDict
from pathlib import Path

import boto3
import botocore.config
import botocore.loaders
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from .durablefiles import fsync_dir, write_atomically


class StoreError(Exception):
    """The store failed (network, timeout, auth, 5xx...). Retryable. Never means 'not found'."""


class SnapshotMissing(Exception):
    """The store answered definitely that the key does not exist (S3 404 / NoSuchKey,
    missing local file)."""


# One path segment: no spaces, no separators, nothing a shell or URL would mangle.
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
# S3's own limit on key length (bytes; keys are ASCII here).
_MAX_KEY_LENGTH = 1024
_CHUNK_SIZE = 1024 * 1024


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise ValueError.

    Segments of ``[A-Za-z0-9._-]+`` joined by single slashes, none of them made of dots
    only: nothing can be absolute, climb out with ``..`` or collapse into another key
    with ``a//b`` or ``a/./b``, so a key can never escape the local store's root.
    """
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY_LENGTH:
        raise ValueError(f"invalid snapshot key {key!r}")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment) or set(segment) == {"."}:
            raise ValueError(f"invalid snapshot key {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is empty or a key, optionally ending with one slash."""
    if prefix != "":
        validate_key(prefix.removesuffix("/"))
    return prefix


def _copy_stream(source, target) -> None:
    """Copy one open binary file to another in bounded chunks (never all in memory)."""
    shutil.copyfileobj(source, target, _CHUNK_SIZE)


class SnapshotStore:
    """Where snapshots live. Keys are validated with ``validate_key``.

    Every method raises ``StoreError`` when the store could not be reached or failed,
    and only ``get_file`` raises ``SnapshotMissing`` (a definite "no such key").
    """

    name: str = ""

    def put_file(self, key: str, path) -> None:
        """Upload the local file ``path`` under ``key`` (overwrites; callers use unique keys)."""
        raise NotImplementedError

    def get_file(self, key: str, dest) -> None:
        """Download ``key`` to the local path ``dest``, atomically (temp file + os.replace).

        Raises ``SnapshotMissing`` when the key does not exist; ``dest`` is untouched on
        any failure.
        """
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""
        raise NotImplementedError

    def list_keys(self, prefix: str) -> list[str]:
        """All keys starting with ``prefix`` (a string prefix, as in S3), sorted."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"


class LocalSnapshotStore(SnapshotStore):
    """Snapshots as files under ``root/<key>`` (the embedded default)."""

    name = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def __repr__(self):
        return f"<LocalSnapshotStore {self.root}>"

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _error(self, op: str, key: str, exc: BaseException) -> StoreError:
        return StoreError(f"local {op} {key}: {_describe(exc)}")

    def put_file(self, key: str, path) -> None:
        target = self.path_for(key)
        try:
            self._make_dirs(target.parent)
            with open(path, "rb") as source:
                write_atomically(target, lambda f: _copy_stream(source, f))
        except OSError as exc:
            raise self._error("put", key, exc) from exc

    def _make_dirs(self, directory: Path) -> None:
        # A new folder's entry lives in its parent: sync the parents of the folders we
        # create, or the snapshot inside could vanish with its folder after a power cut.
        missing = []
        while not directory.is_dir() and directory != directory.parent:
            missing.append(directory)
            directory = directory.parent
        for created in reversed(missing):
            created.mkdir(exist_ok=True)
            fsync_dir(created.parent)

    def get_file(self, key: str, dest) -> None:
        source_path = self.path_for(key)
        try:
            source = open(source_path, "rb")  # noqa: SIM115 - closed below, after the copy
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise SnapshotMissing(f"local get {key}: no such snapshot") from exc
        except OSError as exc:
            raise self._error("get", key, exc) from exc
        try:
            with source:
                write_atomically(Path(dest), lambda f: _copy_stream(source, f))
        except OSError as exc:
            raise self._error("get", key, exc) from exc

    def delete(self, key: str) -> None:
        # No directory sync: a deletion lost in a power cut only brings back garbage.
        try:
            self.path_for(key).unlink(missing_ok=True)
        except OSError as exc:
            raise self._error("delete", key, exc) from exc

    def list_keys(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        # Only the folder the prefix points into can hold matches: don't walk the rest.
        folder, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        if not start.is_dir():
            return []
        keys = []
        try:
            for dirpath, _dirs, files in os.walk(start, onerror=_raise_unless_gone):
                relative = Path(dirpath).relative_to(self.root).as_posix()
                base = "" if relative == "." else relative + "/"
                # Temporary files have a "~" in their name, so they fail this check.
                keys.extend(base + name for name in files if _is_valid(base + name))
        except OSError as exc:
            raise self._error("list", prefix, exc) from exc
        return sorted(key for key in keys if key.startswith(prefix))

    def exists(self, key: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(self.path_for(key)).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self._error("exists", key, exc) from exc


def _raise_unless_gone(exc: OSError) -> None:
    # A folder deleted while we walk is simply not there; anything else is a failure.
    if not isinstance(exc, FileNotFoundError):
        raise exc


def _is_valid(key: str) -> bool:
    try:
        validate_key(key)
    except ValueError:
        return False
    return True


# Codes that mean "this key does not exist". HeadObject answers a bare 404 (no body,
# so the code is "404"). NoSuchBucket is deliberately absent: a missing bucket is a
# misconfiguration, and reporting it as "no snapshot" would make every user look new.
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


def _is_missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return str(error.get("Code", "")) in _MISSING_CODES


def _describe(exc: BaseException) -> str:
    """A short, human message for a botocore or OS error (no operation boilerplate)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or "error"
        message = error.get("Message") or ""
        return f"{code} (HTTP {status}){': ' + message if message else ''}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class S3SnapshotStore(SnapshotStore):
    """Snapshots as objects in an S3-compatible bucket, under an optional key prefix.

    Callers never see the prefix: keys go in and come out of ``list_keys`` without it.
    """

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        connect_timeout: float = 5,
        read_timeout: float = 30,
    ):
        if not bucket:
            raise ValueError("an S3 snapshot store needs a bucket")
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        prefix = (prefix or "").strip("/")
        # "env1" and "env1/" both mean objects under "env1/".
        self.prefix = validate_key(prefix) + "/" if prefix else ""
        self.client = _make_client(self.endpoint_url, region or None, connect_timeout, read_timeout)

    def __repr__(self):
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"<S3SnapshotStore s3://{self.bucket}/{self.prefix}{where}>"

    def _object_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _error(self, op: str, key: str, exc: BaseException) -> StoreError:
        return StoreError(f"S3 {op} {key}: {_describe(exc)}")

    def put_file(self, key: str, path) -> None:
        object_key = self._object_key(key)
        try:
            # A file object streams from disk (botocore seeks back to retry), and a
            # single PUT never leaves half-finished multipart uploads behind.
            with open(path, "rb") as body:
                self.client.put_object(Bucket=self.bucket, Key=object_key, Body=body)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("put", key, exc) from exc

    def get_file(self, key: str, dest) -> None:
        object_key = self._object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _is_missing(exc):
                raise SnapshotMissing(f"S3 get {key}: no such snapshot") from exc
            raise self._error("get", key, exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._error("get", key, exc) from exc
        body = response["Body"]
        try:
            # StreamingBody checks the length it was promised, so a cut connection
            # raises instead of leaving a short file.
            with body:
                write_atomically(Path(dest), lambda f: _copy_stream(body, f))
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("get", key, exc) from exc

    def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        try:
            # S3 answers 204 for a key that does not exist.
            self.client.delete_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if not _is_missing(exc):
                raise self._error("delete", key, exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._error("delete", key, exc) from exc

    def list_keys(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        keys = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix) :]
                    # Skip what we never write (folder markers made by consoles, ...):
                    # handing callers a key they cannot pass back would only fail later.
                    if _is_valid(key):
                        keys.append(key)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("list", prefix, exc) from exc
        return sorted(keys)

    def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        try:
            # A listing rather than HeadObject: HEAD answers a bare 404 for a missing
            # bucket too, and a misnamed bucket must be an error, not "no snapshot".
            # The key itself sorts first among the keys it prefixes.
            response = self.client.list_objects_v2(Bucket=self.bucket, Prefix=object_key, MaxKeys=1)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("exists", key, exc) from exc
        return any(item["Key"] == object_key for item in response.get("Contents", ()))


def _make_client(endpoint_url, region, connect_timeout, read_timeout):
    options = {
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        # botocore counts max_attempts as retries after the first try. Few of them: the
        # caller retries later anyway, and a request must fail quickly enough to answer
        # the HTTP request waiting on it.
        "retries": {"max_attempts": 2, "mode": "standard"},
    }
    if endpoint_url:
        # S3-compatible services (MinIO, R2, moto) want path-style URLs, and several
        # reject the checksum headers boto3 sends by default since 1.36.
        options["s3"] = {"addressing_style": "path"}
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    # A session of its own: boto3's default session is shared and not thread-safe.
    # Credentials come from the standard AWS environment variables.
    with _client_lock:
        return _new_session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=botocore.config.Config(**options),
        )


# Reading botocore's service models is most of the ~150 ms a new client costs; one
# loader shared by every session reads them once per process (~25 ms a client after).
# The models are read-only once loaded; building clients one at a time keeps the
# loader's caches from being filled by two threads at once.
_loader = botocore.loaders.create_loader()
_client_lock = threading.Lock()


def _new_session() -> boto3.session.Session:
    core = botocore.session.Session()
    core.register_component("data_loader", _loader)
    return boto3.session.Session(botocore_session=core)


# --- Picking the store from settings -------------------------------------------------

# Building a boto3 client takes tens of milliseconds, so stores are cached, keyed by
# every setting they were built from (tests change settings per test). Bounded, so a
# test run making a bucket per test does not keep hundreds of clients alive.
_CACHE_SIZE = 16
_cache: "OrderedDict[tuple, SnapshotStore]" = OrderedDict()
_cache_lock = threading.Lock()


def _store_settings() -> tuple:
    """What the current settings say the store is; only the settings that backend uses."""
    if settings.S3_BUCKET:
        return (
            "s3",
            settings.S3_BUCKET,
            settings.S3_ENDPOINT_URL or None,
            settings.S3_REGION or None,
            getattr(settings, "SNAPSHOT_PREFIX", "") or "",
            getattr(settings, "SNAPSHOT_CONNECT_TIMEOUT", 5),
            getattr(settings, "SNAPSHOT_READ_TIMEOUT", 30),
        )
    local_dir = getattr(settings, "SNAPSHOT_LOCAL_DIR", None)
    root = Path(local_dir) if local_dir else Path(settings.REELEDITOR_DATA_DIR) / "snapshots"
    return ("local", root)


def _build_store(values: tuple) -> SnapshotStore:
    kind, *options = values
    if kind == "local":
        return LocalSnapshotStore(*options)
    bucket, endpoint_url, region, prefix, connect_timeout, read_timeout = options
    return S3SnapshotStore(
        bucket,
        endpoint_url=endpoint_url,
        region=region,
        prefix=prefix,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


def get_store() -> SnapshotStore:
    """The snapshot store the current settings describe (read now, not at import).

    S3 when ``S3_BUCKET`` is set, else a folder: ``SNAPSHOT_LOCAL_DIR`` or
    ``<REELEDITOR_DATA_DIR>/snapshots``. The same settings give the same instance.
    """
    values = _store_settings()
    with _cache_lock:
        store = _cache.get(values)
        if store is None:
            # Built under the lock: two threads must not both pay for a client.
            store = _cache[values] = _build_store(values)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(values)
        return store


def clear_store_cache() -> None:
    """Forget every cached store (tests that swap credentials or endpoints use this)."""
    with _cache_lock:
        _cache.clear()
