"""Segments (syncstore/walsegments.py) on real SQLite files, without Django's sync layer.

The chain is rebuilt the way a pull does it: an image of the copy where the position
was established, then every segment applied in order; the result must be the copy,
row for row, with SQLite's integrity check passing. Every way the WAL can stop
continuing from a recorded position must raise ChainBroken, never a short segment.
"""

import sqlite3
import struct
from contextlib import closing
from pathlib import Path

import pytest

from syncstore import changecounter, snapshots, walsegments


@pytest.fixture
def copy(tmp_path):
    """A user-like database in WAL mode with the change counter, kept open as in a
    process that serves it."""
    path = tmp_path / "projects.sqlite3"
    with closing(walsegments.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE clip (id INTEGER PRIMARY KEY, name TEXT, body BLOB)")
        changecounter.install(conn.cursor())
        for i in range(200):
            conn.execute("INSERT INTO clip (name, body) VALUES (?, ?)", (f"c{i}", b"x" * 900))
    walsegments.keep_open(path)
    yield path
    walsegments.close_keeper(path)


def write(path, sql, *params):
    with closing(walsegments.connect(path)) as conn:
        conn.execute(sql, params)


def changes(path):
    return changecounter.read_file(path)


def rows(path):
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT id, name, length(body) FROM clip ORDER BY id").fetchall()


def image_of(path, dest):
    snapshots.copy_image(path, dest)
    return dest


def apply(image, segment):
    walsegments.apply(image, segment.path, segment.checksum)
    snapshots.check_integrity(image)
    snapshots.remove_side_files(image)


def test_a_chain_of_segments_rebuilds_the_copy_page_for_page(copy, tmp_path):
    position = walsegments.establish(copy, 1, changes(copy))
    image = image_of(copy, tmp_path / "remote.sqlite3")
    edits = [
        ("UPDATE clip SET name = ? WHERE id = ?", "renamed", 5),
        ("INSERT INTO clip (name, body) VALUES (?, ?)", "big", b"y" * 300_000),  # grows
        ("DELETE FROM clip WHERE id < ?", 150),  # frees pages
        ("CREATE INDEX clip_name ON clip (name)",),  # a schema change
        ("INSERT INTO clip (name, body) VALUES (?, ?)", "last", b"z"),
    ]
    for version, (sql, *params) in enumerate(edits, start=2):
        write(copy, sql, *params)
        segment = walsegments.take(copy, position, tmp_path)
        assert segment.changes == changes(copy)
        apply(image, segment)
        assert rows(image) == rows(copy)
        assert changes(image) == changes(copy)
        position = segment.end.at_version(version)
    with closing(sqlite3.connect(image)) as conn:
        assert conn.execute("PRAGMA index_list(clip)").fetchall()[0][1] == "clip_name"


def test_a_segment_holds_what_the_write_changed_not_the_database(copy, tmp_path):
    write(copy, "INSERT INTO clip (name, body) VALUES ('pad', zeroblob(4000000))")
    position = walsegments.establish(copy, 1, changes(copy))
    write(copy, "UPDATE clip SET name = 'autosave' WHERE id = 7")
    segment = walsegments.take(copy, position, tmp_path)
    assert copy.stat().st_size > 4_000_000
    assert segment.frames <= 4  # the marker's page, the row's page, the counter's
    assert segment.size_bytes < 16_000


def test_frames_written_after_the_segment_start_the_next_one(copy, tmp_path):
    position = walsegments.establish(copy, 1, changes(copy))
    image = image_of(copy, tmp_path / "remote.sqlite3")
    write(copy, "UPDATE clip SET name = 'a' WHERE id = 1")
    first = walsegments.take(copy, position, tmp_path)
    write(copy, "UPDATE clip SET name = 'b' WHERE id = 2")
    second = walsegments.take(copy, first.end, tmp_path)
    assert second.end.offset > first.end.offset
    apply(image, first)
    assert rows(image)[:2] == [(1, "a", 900), (2, "c1", 900)]
    apply(image, second)
    assert rows(image) == rows(copy)


def test_nothing_written_since_the_position_is_no_segment(copy, tmp_path):
    position = walsegments.establish(copy, 1, changes(copy))
    write(copy, "UPDATE clip SET name = 'a' WHERE id = 1")
    segment = walsegments.take(copy, position, tmp_path)
    with pytest.raises(walsegments.ChainBroken, match="no frames"):
        walsegments.take(copy, segment.end, tmp_path)


def test_a_checkpoint_someone_else_ran_breaks_the_chain(copy, tmp_path):
    position = walsegments.establish(copy, 1, changes(copy))
    write(copy, "UPDATE clip SET name = 'unshipped' WHERE id = 1")
    with closing(sqlite3.connect(copy)) as other:  # a connection the sync layer never made
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    write(copy, "UPDATE clip SET name = 'next' WHERE id = 2")
    # The first write is folded into the file: shipping only the second would lose it.
    with pytest.raises(walsegments.ChainBroken, match="restarted"):
        walsegments.take(copy, position, tmp_path)


def test_a_wal_deleted_by_the_last_connection_closing_breaks_the_chain(copy, tmp_path):
    position = walsegments.establish(copy, 1, changes(copy))
    write(copy, "UPDATE clip SET name = 'unshipped' WHERE id = 1")
    walsegments.close_keeper(copy)  # the last connection: SQLite checkpoints, deletes the WAL
    assert not walsegments.wal_path(copy).exists()
    with pytest.raises(walsegments.ChainBroken, match="no header"):
        walsegments.take(copy, position, tmp_path)
    write(copy, "UPDATE clip SET name = 'next' WHERE id = 2")  # a new WAL, new salts
    with pytest.raises(walsegments.ChainBroken, match="restarted"):
        walsegments.take(copy, position, tmp_path)


def test_the_keeper_keeps_the_wal_when_every_other_connection_closes(copy, tmp_path):
    position = walsegments.establish(copy, 1, changes(copy))
    for i in range(3):
        write(copy, "UPDATE clip SET name = ? WHERE id = ?", f"n{i}", i + 1)
    assert walsegments.wal_path(copy).stat().st_size > 0
    assert walsegments.take(copy, position, tmp_path).frames >= 3


def test_a_torn_frame_after_the_last_commit_is_not_shipped(copy, tmp_path):
    position = walsegments.establish(copy, 1, changes(copy))
    write(copy, "UPDATE clip SET name = 'kept' WHERE id = 1")
    whole = walsegments.take(copy, position, tmp_path)
    wal = walsegments.wal_path(copy)
    raw = wal.read_bytes()
    frame = walsegments.FRAME_HEADER_BYTES + position.page_size
    last = raw[whole.end.offset - frame : whole.end.offset]
    # A frame with this WAL's salts and a commit mark but a page that does not match its
    # checksum: a write cut off by a crash.
    torn = last[:24] + bytes(position.page_size)
    with open(wal, "ab") as handle:
        handle.write(torn + b"half a frame")
    again = walsegments.take(copy, position, tmp_path)
    assert (again.frames, again.end) == (whole.frames, whole.end)
    assert again.path.read_bytes() == whole.path.read_bytes()


def test_establish_refuses_a_copy_that_moved_on(copy):
    count = changes(copy)
    write(copy, "UPDATE clip SET name = 'later' WHERE id = 1")
    assert walsegments.establish(copy, 1, count) is None


def test_establish_gives_up_while_a_reader_holds_the_wal(copy):
    write(copy, "UPDATE clip SET name = 'in the wal' WHERE id = 1")
    with closing(sqlite3.connect(copy, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM clip").fetchone()  # a read snapshot on the WAL
        assert walsegments.establish(copy, 1, changes(copy)) is None
        reader.execute("COMMIT")
    assert walsegments.establish(copy, 1, changes(copy)) is not None


def test_the_marker_write_is_no_change_to_the_counter(copy):
    before = changes(copy)
    for _ in range(3):
        assert walsegments.establish(copy, 1, before) is not None
    assert changes(copy) == before


@pytest.mark.parametrize("damage", ["checksum", "truncated", "page size", "not a segment"])
def test_a_damaged_segment_is_refused_before_the_image_is_touched(copy, tmp_path, damage):
    position = walsegments.establish(copy, 1, changes(copy))
    image = image_of(copy, tmp_path / "remote.sqlite3")
    write(copy, "UPDATE clip SET name = 'a' WHERE id = 1")
    segment = walsegments.take(copy, position, tmp_path)
    body = _decompressed(segment.path)
    checksum = segment.checksum
    if damage == "checksum":
        segment.path.write_bytes(segment.path.read_bytes()[:-1] + b"\x00")
    else:
        if damage == "truncated":
            body = body[:-10]
        elif damage == "page size":
            body = body[:8] + struct.pack(">I", 1024) + body[12:]
        else:
            body = b"PK\x03\x04" + body[4:]
        checksum = _write_compressed(segment.path, body)
    before = image.read_bytes()
    with pytest.raises(walsegments.SegmentCorrupt):
        walsegments.apply(image, segment.path, checksum)
    assert image.read_bytes() == before


def _decompressed(path: Path) -> bytes:
    import zlib

    return zlib.decompress(path.read_bytes())


def _write_compressed(path: Path, body: bytes) -> str:
    import hashlib
    import zlib

    data = zlib.compress(body)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
