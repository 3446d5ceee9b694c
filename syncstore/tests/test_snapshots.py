"""Snapshot files: taking, packing, verifying, unpacking and installing database images.

Plain SQLite files in the test's own folder: no Django database is involved.
"""

import os
import sqlite3
import zlib

import pytest

from syncstore import snapshots
from syncstore.snapshots import SnapshotCorrupt


def _connect(path, wal=True):
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit: explicit transactions
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    return conn


def _make_database(path, rows=200, label="row"):
    conn = _connect(path)
    try:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
        conn.execute("CREATE INDEX item_name ON item (name)")
        conn.executemany(
            "INSERT INTO item (name, data) VALUES (?, ?)",
            [(f"{label} {i} é✓", os.urandom(16) + bytes(range(256))) for i in range(rows)],
        )
    finally:
        conn.close()
    return path


def _rows(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, name, data FROM item ORDER BY id").fetchall()
    finally:
        conn.close()


def _pack_bytes(data: bytes, path):
    path.write_bytes(zlib.compress(data))
    return path, snapshots.file_checksum(path)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def work(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_a_snapshot_round_trip_preserves_the_data(tmp_path, work):
    source = _make_database(tmp_path / "source.sqlite3")

    packed = snapshots.take(source, work)

    assert packed.path.parent == work
    assert packed.size_bytes == packed.path.stat().st_size
    assert packed.checksum == snapshots.file_checksum(packed.path)
    assert packed.raw_bytes >= 200 * 256
    assert packed.size_bytes < packed.raw_bytes  # compressed
    assert _leftovers(work) == [packed.path.name]  # the raw image is gone

    dest = tmp_path / "restored.sqlite3"
    snapshots.unpack(packed.path, packed.checksum, dest)

    assert _rows(dest) == _rows(source)
    with sqlite3.connect(dest) as conn, sqlite3.connect(source) as original:
        assert list(conn.iterdump()) == list(original.iterdump())


def test_unpack_leaves_nothing_but_the_destination(tmp_path, work):
    packed = snapshots.take(_make_database(tmp_path / "source.sqlite3", rows=3), work)
    target = tmp_path / "target"
    target.mkdir()
    snapshots.unpack(packed.path, packed.checksum, target / "restored.sqlite3")
    assert sorted(p.name for p in target.iterdir()) == ["restored.sqlite3"]


def test_a_snapshot_includes_writes_still_in_the_wal(tmp_path, work):
    path = _make_database(tmp_path / "live.sqlite3", rows=3)
    writer = _connect(path)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")  # nothing reaches the main file
        writer.execute("INSERT INTO item (name) VALUES ('only in the WAL')")
        # Committed, not checkpointed: the row exists only in the -wal file.
        assert os.path.getsize(f"{path}-wal") > 0
        main_file_alone = tmp_path / "main-file-alone.sqlite3"
        main_file_alone.write_bytes(path.read_bytes())
        assert "only in the WAL" not in [name for _, name, _ in _rows(main_file_alone)]

        packed = snapshots.take(path, work)  # while the writer keeps the database open
    finally:
        writer.close()

    dest = tmp_path / "restored.sqlite3"
    snapshots.unpack(packed.path, packed.checksum, dest)
    names = [name for _, name, _ in _rows(dest)]
    assert names[-1] == "only in the WAL"
    assert len(names) == 4


def test_a_snapshot_taken_during_an_open_write_transaction_is_consistent(tmp_path, work):
    path = _make_database(tmp_path / "live.sqlite3", rows=3)
    writer = _connect(path)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO item (name) VALUES ('not committed')")
        packed = snapshots.take(path, work)
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    dest = tmp_path / "restored.sqlite3"
    snapshots.unpack(packed.path, packed.checksum, dest)
    assert [name for _, name, _ in _rows(dest)] == [f"row {i} é✓" for i in range(3)]


def _assert_refused(packed, checksum, dest, match):
    with pytest.raises(SnapshotCorrupt, match=match):
        snapshots.unpack(packed, checksum, dest)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_unpack_refuses_a_wrong_checksum(tmp_path, work):
    packed = snapshots.take(_make_database(tmp_path / "db.sqlite3"), work)
    _assert_refused(packed.path, "0" * 64, tmp_path / "dest.sqlite3", "checksum mismatch")


def test_unpack_refuses_bytes_changed_after_the_checksum(tmp_path, work):
    packed = snapshots.take(_make_database(tmp_path / "db.sqlite3"), work)
    data = bytearray(packed.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    packed.path.write_bytes(bytes(data))
    _assert_refused(packed.path, packed.checksum, tmp_path / "dest.sqlite3", "checksum mismatch")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_unpack_refuses_truncated_data(tmp_path, work, keep):
    packed = snapshots.take(_make_database(tmp_path / "db.sqlite3"), work)
    data = packed.path.read_bytes()
    packed.path.write_bytes(data[: int(len(data) * keep)])
    # Checked with the truncated file's own checksum, so the decompressor must notice.
    checksum = snapshots.file_checksum(packed.path)
    _assert_refused(packed.path, checksum, tmp_path / "dest.sqlite3", "truncated")


def test_unpack_refuses_bytes_that_are_not_compressed(tmp_path):
    packed = tmp_path / "plain.z"
    packed.write_bytes(b"this was never compressed" * 20)
    checksum = snapshots.file_checksum(packed)
    _assert_refused(packed, checksum, tmp_path / "dest.sqlite3", "not a compressed snapshot")


def test_unpack_refuses_a_compressed_file_that_is_not_sqlite(tmp_path):
    packed, checksum = _pack_bytes(b"definitely not a database " * 400, tmp_path / "text.z")
    _assert_refused(packed, checksum, tmp_path / "dest.sqlite3", "not a SQLite database")


def _corrupt_a_page(path):
    """Overwrite one b-tree page in the middle of a real database file with garbage."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()
    assert page_count > 10
    data = bytearray(path.read_bytes())
    page = page_count // 2
    data[page * page_size : (page + 1) * page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))


def test_unpack_refuses_a_database_that_fails_the_integrity_check(tmp_path):
    image = _make_database(tmp_path / "damaged.sqlite3", rows=400)
    _corrupt_a_page(image)
    packed, checksum = _pack_bytes(image.read_bytes(), tmp_path / "damaged.z")
    _assert_refused(
        packed, checksum, tmp_path / "dest.sqlite3", "integrity check failed|not a SQLite"
    )


def test_a_refused_unpack_leaves_an_existing_destination_alone(tmp_path):
    dest = _make_database(tmp_path / "dest.sqlite3", rows=5)
    before = dest.read_bytes()
    packed, checksum = _pack_bytes(b"not a database" * 100, tmp_path / "bad.z")
    with pytest.raises(SnapshotCorrupt):
        snapshots.unpack(packed, checksum, dest)
    assert dest.read_bytes() == before


def test_unpack_without_a_checksum_still_checks_the_image(tmp_path, work):
    # Conflict copies are unpacked with no registry checksum to compare against.
    packed, _ = _pack_bytes(b"garbage" * 100, tmp_path / "bad.z")
    _assert_refused(packed, "", tmp_path / "dest.sqlite3", "not a SQLite database")
    good = snapshots.take(_make_database(tmp_path / "db.sqlite3", rows=2), work)
    snapshots.unpack(good.path, "", tmp_path / "dest.sqlite3")
    assert len(_rows(tmp_path / "dest.sqlite3")) == 2


@pytest.mark.parametrize("new_rows", [500, 2], ids=["larger", "smaller"])
def test_install_into_a_live_database_that_another_connection_holds_open(tmp_path, work, new_rows):
    live = _make_database(tmp_path / "live.sqlite3", rows=50, label="old")
    reader = _connect(live)
    try:
        assert reader.execute("SELECT count(*) FROM item").fetchone() == (50,)
        new = _make_database(tmp_path / "new.sqlite3", rows=new_rows, label="new")
        packed = snapshots.take(new, work)
        image = tmp_path / "image.sqlite3"
        snapshots.unpack(packed.path, packed.checksum, image)

        snapshots.install(image, live)

        # The connection that stayed open sees the new content on its next read.
        assert reader.execute("SELECT count(*) FROM item").fetchone() == (new_rows,)
        names = {name for (name,) in reader.execute("SELECT name FROM item")}
        assert names == {f"new {i} é✓" for i in range(new_rows)}
        assert reader.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # ...and it can keep writing to it.
        reader.execute("INSERT INTO item (name) VALUES ('after install')")
    finally:
        reader.close()
    assert _rows(live)[-1][1] == "after install"
    assert len(_rows(live)) == new_rows + 1


def test_install_waits_for_a_reader_in_a_transaction_then_it_sees_the_new_content(tmp_path, work):
    live = _make_database(tmp_path / "live.sqlite3", rows=20, label="old")
    image = _make_database(tmp_path / "image.sqlite3", rows=7, label="new")
    reader = _connect(live)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM item").fetchone() == (20,)
        snapshots.install(image, live)
        # A read transaction keeps its consistent view until it ends...
        assert reader.execute("SELECT count(*) FROM item").fetchone() == (20,)
        reader.execute("COMMIT")
        # ...then sees the installed content.
        assert reader.execute("SELECT count(*) FROM item").fetchone() == (7,)
    finally:
        reader.close()
