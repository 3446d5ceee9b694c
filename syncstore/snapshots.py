"""Snapshot files: a consistent image of a user's database, compressed and checksummed.

A snapshot is taken with SQLite's online backup API, so it is a consistent image
including whatever is still in the WAL, whatever other connections are doing; no
checkpoint dance. It is compressed with zlib (level 1: measured 3-7x smaller at about
10 ms per MiB) and identified by the SHA-256 of the stored bytes. Restoring verifies
the checksum, then ``PRAGMA integrity_check`` on the decompressed file, before the
working copy is touched.
"""

import hashlib
import os
import sqlite3
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from . import changecounter

CHUNK = 1024 * 1024
COMPRESSION_LEVEL = 1


class SnapshotCorrupt(Exception):
    """A downloaded snapshot failed its checksum or SQLite's integrity check."""


@dataclass(frozen=True)
class PackedSnapshot:
    path: Path  # the compressed file, ready to upload
    size_bytes: int
    checksum: str  # sha256 hex of the compressed bytes
    raw_bytes: int  # size of the database image before compression
    changes: int | None  # the image's change counter: which writes it holds
    kind: str = "image"
    end = None  # no WAL position: an image is not a continuation of one (PackedSegment)


def take(db_path: Path, workdir: Path, *, keep: bool = False) -> PackedSnapshot:
    """Pack a consistent image of the database at ``db_path`` into ``workdir``.

    The image is a scratch file, deleted at once: it is written with no journal and no
    syncs. The packed file is only synced to disk with ``keep`` (a conflict copy kept on
    this machine); a push uploads it and deletes it, and a crash leaves garbage either
    way: its durability is the store's and the registry's, not this disk's.
    """
    raw, changes = take_raw(db_path, workdir)
    return pack_raw(raw, changes, keep=keep)


def take_raw(db_path: Path, workdir: Path) -> tuple[Path, int | None]:
    """A consistent, uncompressed image of ``db_path`` in ``workdir`` and its change count
    (``pack_raw`` compresses it; the part that reads the live database is this one)."""
    workdir.mkdir(parents=True, exist_ok=True)
    raw = workdir / f".{uuid.uuid4().hex}.image"
    try:
        copy_image(db_path, raw)
        return raw, changecounter.read_file(raw)
    except BaseException:
        raw.unlink(missing_ok=True)
        raise
    finally:
        remove_side_files(raw)  # the counter read opened it


def pack_raw(raw: Path, changes: int | None, *, keep: bool = False) -> PackedSnapshot:
    """Compress the image ``raw`` (from ``take_raw``) beside it; ``raw`` is removed."""
    packed = raw.with_name(f".{uuid.uuid4().hex}.sqlite3.z")
    try:
        checksum, size = _compress(raw, packed, sync=keep)
        return PackedSnapshot(packed, size, checksum, raw.stat().st_size, changes)
    except BaseException:
        packed.unlink(missing_ok=True)
        raise
    finally:
        raw.unlink(missing_ok=True)


# Files SQLite keeps beside a database. They belong to one database file: placed next
# to another one (a database deleted and downloaded again), a -wal would be replayed
# onto it and bring back rows deleted long ago.
SIDE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")


def remove_side_files(path: Path) -> None:
    """Delete a private file's -wal/-shm/-journal (images and temporary files only)."""
    for suffix in SIDE_FILE_SUFFIXES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def unpack(packed: Path, checksum: str, dest: Path, *, check: bool = True) -> None:
    """Verify ``packed`` and write the database image it holds to ``dest``.

    Raises SnapshotCorrupt (and leaves nothing at ``dest``) when the bytes do not
    match ``checksum`` or the image is not a sound SQLite database (``check=False``
    leaves that check to the caller: segments are applied to the image first).
    """
    actual = file_checksum(packed)
    if checksum and actual != checksum:
        raise SnapshotCorrupt(f"checksum mismatch: expected {checksum[:12]}, got {actual[:12]}")
    tmp = dest.with_name(f".{uuid.uuid4().hex}.unpacking")
    try:
        _decompress(packed, tmp)
        if check:
            check_integrity(tmp)
        os.replace(tmp, dest)
    finally:
        # Opening a WAL-mode image (the integrity check) leaves -wal/-shm beside it.
        tmp.unlink(missing_ok=True)
        remove_side_files(tmp)


def install(image: Path, db_path: Path) -> int | None:
    """Replace the contents of the live database at ``db_path`` with ``image``.

    Uses the backup API into the live file rather than renaming over it: connections
    other threads hold keep working (they see the new content after their current
    read), and SQLite keeps the WAL and shared-memory files consistent (the WAL is the
    live file's own). Verified afterwards: the live file must hold exactly the image's
    changes. Returns that change count.
    """
    expected = changecounter.read_file(image)
    _backup(image, db_path)
    found = changecounter.read_file(db_path)
    if found != expected:
        raise SnapshotCorrupt(f"installed copy reads {found} changes instead of {expected}")
    return expected


def copy_image(db_path: Path, dest: Path) -> None:
    """A consistent image of the live database at ``db_path`` as the plain file ``dest``
    (the start of a pull that applies segments to what this copy holds)."""
    _backup(db_path, dest, scratch=True)
    remove_side_files(dest)


def check_integrity(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise SnapshotCorrupt(f"not a SQLite database: {exc}") from None
    if not result or result[0] != "ok":
        raise SnapshotCorrupt(f"integrity check failed: {result[0] if result else 'no answer'}")


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _backup(source: Path, dest: Path, *, scratch: bool = False) -> None:
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(dest, timeout=30)
        try:
            if scratch:  # a private, new file deleted right after: nothing to roll back
                dst.execute("PRAGMA journal_mode=OFF")
                dst.execute("PRAGMA synchronous=OFF")
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _compress(source: Path, dest: Path, *, sync: bool) -> tuple[str, int]:
    digest = hashlib.sha256()
    compressor = zlib.compressobj(COMPRESSION_LEVEL)
    size = 0
    with open(source, "rb") as src, open(dest, "wb") as dst:
        while chunk := src.read(CHUNK):
            size += _write(dst, digest, compressor.compress(chunk))
        size += _write(dst, digest, compressor.flush())
        if sync:
            dst.flush()
            os.fsync(dst.fileno())
    return digest.hexdigest(), size


def _write(handle, digest, data: bytes) -> int:
    if data:
        digest.update(data)
        handle.write(data)
    return len(data)


def _decompress(source: Path, dest: Path) -> None:
    decompressor = zlib.decompressobj()
    try:
        with open(source, "rb") as src, open(dest, "wb") as dst:
            while chunk := src.read(CHUNK):
                dst.write(decompressor.decompress(chunk))
            dst.write(decompressor.flush())
            if not decompressor.eof:
                raise SnapshotCorrupt("the snapshot is truncated")
            dst.flush()
            os.fsync(dst.fileno())
    except zlib.error as exc:
        raise SnapshotCorrupt(f"not a compressed snapshot: {exc}") from None
