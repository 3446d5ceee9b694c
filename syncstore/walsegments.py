"""Segments: the WAL frames a write added, pushed instead of the whole database.

Why: a whole-database snapshot per write costs time in proportion to the database
(``bench/write_cost.py``), while the frames SQLite appends to the WAL for one autosave
are a handful of pages whatever the size. So a push uploads the frames added since the
last committed position as one immutable object, and a pull applies the segments after
the last full image, in order, page by page.

A segment is only taken when the chain is provably unbroken; anything else raises
``ChainBroken`` and the caller pushes a full image instead, never a guess:

* A position (``WalPosition``) is recorded only where the copy holds exactly a
  committed version, page for page: at the end of the frames a commit shipped, or after
  ``establish`` (a checkpoint to an empty WAL, then one marker write that starts a new
  WAL header; the marker's frames are the first of the next segment).
* ``take`` reads the WAL under SQLite's write lock (``BEGIN IMMEDIATE``: no frame can
  be added meanwhile, and the change counter it reads describes exactly those frames),
  requires the header to still carry the recorded checkpoint sequence and salts (every
  checkpoint that restarts the WAL changes them), then keeps the frames after the
  recorded offset whose salts and cumulative checksums are valid, up to the last commit
  frame: SQLite's own rule for which frames a WAL holds.

Checkpoints belong to the sync layer. User connections run with
``wal_autocheckpoint=0``, and a database with a recorded position has one idle keeper
connection (``keep_open``), so a request closing the last connection does not fold the
WAL into the file and delete it. A checkpoint by anyone else only costs one full image.
"""

import hashlib
import sqlite3
import struct
import sys
import threading
import uuid
import zlib
from array import array
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from . import changecounter

WAL_HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24
_WAL_MAGIC = (0x377F0682, 0x377F0683)  # the low bit: checksum words are big-endian
_WAL_FORMAT = 3007000
_SEGMENT_MAGIC = b"RSEG\x00\x01\r\n"
MARKER_TABLE = changecounter.WAL_MARKER_TABLE
_MASK = 0xFFFFFFFF


class ChainBroken(Exception):
    """The WAL no longer continues from the recorded position: push a full image."""


class SegmentCorrupt(Exception):
    """A downloaded segment failed its checksum or does not fit its image."""


@dataclass(frozen=True)
class WalPosition:
    """Where the frames of the next segment start, for a copy in step with ``version``."""

    version: int
    checkpoint: int  # the WAL header's checkpoint sequence number
    salt1: int
    salt2: int
    page_size: int
    offset: int  # the byte where the next frame starts
    checksum1: int  # the cumulative checksum up to ``offset``
    checksum2: int

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "WalPosition | None":
        return cls(**data) if data else None

    def at_version(self, version: int) -> "WalPosition":
        return WalPosition(**{**asdict(self), "version": version})


@dataclass(frozen=True)
class PackedSegment:
    path: Path  # the compressed segment, ready to upload
    size_bytes: int
    checksum: str  # sha256 hex of the compressed bytes
    frames: int
    changes: int | None  # the change counter after the segment's last frame
    end: WalPosition  # where the following segment starts (version: the base's)
    kind: str = "segment"


# --- Connections and keepers -----------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    """A connection to a user database that never checkpoints on its own."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


_keepers_lock = threading.Lock()
_keepers: dict[str, sqlite3.Connection] = {}


def keep_open(path: Path) -> None:
    """Hold one idle connection to ``path`` so closing the others never checkpoints.

    SQLite checkpoints and deletes the WAL when the last connection to a database
    closes; Django closes a request's connections when it ends.
    """
    key = str(Path(path).resolve())
    with _keepers_lock:
        if key in _keepers:
            return
        conn = connect(Path(key))
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL
        _keepers[key] = conn


def close_keeper(path: Path) -> None:
    """Close the keeper of ``path`` (before the file is moved, removed or forgotten)."""
    with _keepers_lock:
        conn = _keepers.pop(str(Path(path).resolve()), None)
    if conn is not None:
        conn.close()


def close_all_keepers() -> None:
    with _keepers_lock:
        conns = list(_keepers.values())
        _keepers.clear()
    for conn in conns:
        conn.close()


@contextmanager
def _kept_connection(db_path: Path):
    """A connection of our own to ``db_path``, with its keeper open, closed afterwards."""
    keep_open(db_path)
    conn = connect(db_path)
    try:
        yield conn
    finally:
        conn.close()


def wal_path(db_path: Path) -> Path:
    return Path(f"{db_path}-wal")


# --- The WAL format ----------------------------------------------------------------------


def _checksum(data: bytes, s1: int, s2: int, big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum: over 32-bit word pairs, cumulative from (s1, s2)."""
    words = array("I")
    words.frombytes(data)
    if big_endian != (sys.byteorder == "big"):
        words.byteswap()
    pairs = iter(words)
    for a, b in zip(pairs, pairs, strict=True):
        s1 = (s1 + a + s2) & _MASK
        s2 = (s2 + b + s1) & _MASK
    return s1, s2


@dataclass(frozen=True)
class _Header:
    big_endian: bool
    page_size: int
    checkpoint: int
    salt1: int
    salt2: int
    checksum: tuple[int, int]


def _read_header(raw: bytes) -> _Header:
    if len(raw) < WAL_HEADER_BYTES:
        raise ChainBroken("the WAL has no header")
    magic, fmt, page_size, checkpoint, salt1, salt2, c1, c2 = struct.unpack(">8I", raw[:32])
    if magic not in _WAL_MAGIC or fmt != _WAL_FORMAT:
        raise ChainBroken("the WAL header is not one SQLite wrote")
    big_endian = bool(magic & 1)
    if _checksum(raw[:24], 0, 0, big_endian) != (c1, c2):
        raise ChainBroken("the WAL header's checksum does not match")
    return _Header(big_endian, page_size, checkpoint, salt1, salt2, (c1, c2))


def _committed_frames(data: bytes, header: _Header, start: int, checksum: tuple[int, int]):
    """The valid frames in ``data`` (the WAL from byte ``start``) up to the last commit.

    Returns ``(frames, end, checksum at end)``, frames as ``(page number, database size
    in pages if a commit frame else 0, page bytes)``.
    """
    frame_bytes = FRAME_HEADER_BYTES + header.page_size
    frames, kept, end, end_checksum = [], 0, start, checksum
    s1, s2 = checksum
    at = 0
    while at + frame_bytes <= len(data):
        head = data[at : at + FRAME_HEADER_BYTES]
        pgno, commit, salt1, salt2, c1, c2 = struct.unpack(">6I", head)
        if pgno == 0 or (salt1, salt2) != (header.salt1, header.salt2):
            break
        page = data[at + FRAME_HEADER_BYTES : at + frame_bytes]
        s1, s2 = _checksum(head[:8], s1, s2, header.big_endian)
        s1, s2 = _checksum(page, s1, s2, header.big_endian)
        if (s1, s2) != (c1, c2):
            break
        frames.append((pgno, commit, page))
        at += frame_bytes
        if commit:
            kept, end, end_checksum = len(frames), start + at, (s1, s2)
    return frames[:kept], end, end_checksum


def _position(version: int, header: _Header, offset: int, checksum) -> WalPosition:
    return WalPosition(
        version=version,
        checkpoint=header.checkpoint,
        salt1=header.salt1,
        salt2=header.salt2,
        page_size=header.page_size,
        offset=offset,
        checksum1=checksum[0],
        checksum2=checksum[1],
    )


# --- Positions -----------------------------------------------------------------------------


def establish(db_path: Path, version: int, changes: int | None) -> WalPosition | None:
    """Start a new WAL for a copy that holds exactly ``version`` (with ``changes``).

    Checkpoints the WAL into the file and truncates it, then writes the marker, so the
    WAL gets a header of its own; the position is the start of that header's frames.
    None (no position: the next push is a full image) when the WAL cannot be emptied
    now or the copy no longer holds ``changes``.
    """
    with _kept_connection(db_path) as conn:
        conn.execute("PRAGMA busy_timeout=2000")
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        conn.execute("BEGIN IMMEDIATE")
        try:
            wal = wal_path(db_path)
            emptied = not busy and (not wal.exists() or wal.stat().st_size == 0)
            if not emptied or changecounter.read(conn.cursor()) != changes:
                conn.execute("ROLLBACK")
                return None
            changecounter.create_wal_marker(conn.cursor())
            conn.execute(
                f"INSERT INTO {MARKER_TABLE} (id, n) VALUES (1, 1) "
                "ON CONFLICT (id) DO UPDATE SET n = n + 1"
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        with open(wal, "rb") as handle:
            header = _read_header(handle.read(WAL_HEADER_BYTES))
        return _position(version, header, WAL_HEADER_BYTES, header.checksum)


def wal_bytes(db_path: Path) -> int:
    try:
        return wal_path(db_path).stat().st_size
    except FileNotFoundError:
        return 0


# --- Taking and applying segments --------------------------------------------------------


def take(db_path: Path, position: WalPosition, workdir: Path) -> PackedSegment:
    """Pack the frames committed after ``position`` into a segment file in ``workdir``."""
    with _kept_connection(db_path) as conn:
        conn.execute("BEGIN IMMEDIATE")  # no frame is added while we read
        try:
            changes = changecounter.read(conn.cursor())
            frames, end = _frames_after(wal_path(db_path), position)
        finally:
            conn.execute("ROLLBACK")
    if not frames:
        raise ChainBroken("no frames were written after the recorded position")
    workdir.mkdir(parents=True, exist_ok=True)
    dest = workdir / f".{uuid.uuid4().hex}.segment.z"
    checksum, size = _pack(frames, position.page_size, dest)
    return PackedSegment(dest, size, checksum, len(frames), changes, end)


def _frames_after(wal: Path, position: WalPosition):
    try:
        with open(wal, "rb") as handle:
            header = _read_header(handle.read(WAL_HEADER_BYTES))
            recorded = (position.checkpoint, position.salt1, position.salt2, position.page_size)
            if (header.checkpoint, header.salt1, header.salt2, header.page_size) != recorded:
                raise ChainBroken("the WAL was restarted since the recorded position")
            handle.seek(position.offset)
            data = handle.read()
    except FileNotFoundError:
        raise ChainBroken("the WAL was removed since the recorded position") from None
    start = (position.checksum1, position.checksum2)
    frames, end, checksum = _committed_frames(data, header, position.offset, start)
    return frames, _position(position.version, header, end, checksum)


def _pack(frames, page_size: int, dest: Path) -> tuple[str, int]:
    body = bytearray(_SEGMENT_MAGIC)
    body += struct.pack(">II", page_size, len(frames))
    for pgno, commit, page in frames:
        body += struct.pack(">II", pgno, commit)
        body += page
    packed = zlib.compress(bytes(body), 1)
    dest.write_bytes(packed)
    return hashlib.sha256(packed).hexdigest(), len(packed)


def apply(image: Path, segment: Path, checksum: str) -> int:
    """Write the pages of ``segment`` into the database image file ``image``.

    The image must not be open in SQLite (a scratch file being built). Returns the
    number of frames applied. Raises SegmentCorrupt when the segment's bytes do not
    match ``checksum`` or its pages do not fit the image.
    """
    raw = segment.read_bytes()
    if hashlib.sha256(raw).hexdigest() != checksum:
        raise SegmentCorrupt("checksum mismatch")
    try:
        body = zlib.decompress(raw)
    except zlib.error as exc:
        raise SegmentCorrupt(f"not a compressed segment: {exc}") from None
    if not body.startswith(_SEGMENT_MAGIC):
        raise SegmentCorrupt("not a segment")
    at = len(_SEGMENT_MAGIC)
    page_size, count = struct.unpack(">II", body[at : at + 8])
    at += 8
    if page_size != _image_page_size(image):
        raise SegmentCorrupt("the segment's page size is not the image's")
    if len(body) != at + count * (8 + page_size):
        raise SegmentCorrupt("the segment is truncated")
    with open(image, "r+b") as handle:
        for _ in range(count):
            pgno, commit = struct.unpack(">II", body[at : at + 8])
            handle.seek((pgno - 1) * page_size)
            handle.write(body[at + 8 : at + 8 + page_size])
            at += 8 + page_size
            if commit:
                handle.truncate(commit * page_size)
    return count


def _image_page_size(image: Path) -> int:
    with open(image, "rb") as handle:
        head = handle.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        raise SegmentCorrupt("the image is not a SQLite database")
    (size,) = struct.unpack(">H", head[16:18])
    return 65536 if size == 1 else size
