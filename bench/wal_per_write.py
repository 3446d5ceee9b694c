"""How much a push would carry if it shipped what a write changed, not the whole database.

    .venv/bin/python bench/wal_per_write.py     # --sizes 1 10 50 --writes 50

Grounds the "make the write cost flat" design in docs/reliability.md (WAL shipping):
for user databases of 1, 10 and 50 MiB (grown with the same real rows as
``bench/write_cost.py``: projects of 10 clips with 60 crop keyframes each), it takes a
copy of the database, opens it in WAL mode with automatic checkpoints off, and makes
keyframe autosaves the way the app does (``Clip.save()`` updates every column of one
clip row; the change-counter trigger bumps its row), each in its own transaction.
Printed per size: the WAL bytes (frames: page plus 24-byte header) each autosave adds,
against the compressed whole snapshot a push uploads today. Sizes only, no timing:
machine load does not change them.
"""

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(data_dir: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
            "REELEDITOR_DATA_DIR": str(data_dir),
            "SNAPSHOT_LOCAL_DIR": str(data_dir / "store"),
            "SYNC_RETRY_INTERVAL": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def autosave_like(conn: sqlite3.Connection, clip_id: int, rng: random.Random) -> None:
    """What ``Clip.save()`` after an autosave writes: every column of the row."""
    from bench.write_cost import filler_keyframes

    columns = [row[1] for row in conn.execute("PRAGMA table_info(projects_clip)")]
    values = conn.execute("SELECT * FROM projects_clip WHERE id = ?", (clip_id,)).fetchone()
    row = dict(zip(columns, values, strict=True))
    row["crop_keyframes"] = json.dumps(filler_keyframes(rng, row["duration"]))
    row["edited_at"] = "2026-12-02 01:00:00.000000"
    assignments = ", ".join(f'"{name}" = ?' for name in columns if name != "id")
    values = [row[name] for name in columns if name != "id"]
    with conn:
        conn.execute(f"UPDATE projects_clip SET {assignments} WHERE id = ?", [*values, clip_id])


def measure(db_copy: Path, writes: int, rng: random.Random) -> dict:
    conn = sqlite3.connect(db_copy, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the sync layer would checkpoint itself
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    clip_ids = [row[0] for row in conn.execute("SELECT id FROM projects_clip")]
    wal = Path(f"{db_copy}-wal")
    added = []
    for _ in range(writes):
        before = wal.stat().st_size if wal.exists() else 32  # the WAL header
        autosave_like(conn, rng.choice(clip_ids), rng)
        added.append(wal.stat().st_size - before)
    conn.close()
    return {"page_size": page, "wal_bytes": statistics.median(added), "max": max(added)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50], help="MiB")
    parser.add_argument("--writes", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-wal-") as tmp:
        tmp = Path(tmp)
        setup(tmp / "data")
        from django.contrib.auth import get_user_model

        from bench.write_cost import grow
        from syncstore import userdb

        user = get_user_model().objects.create_user("bench", password="x")
        rows = []
        for size_mib in sorted(args.sizes):
            reached = grow(user.pk, size_mib * 2**20, "users/1/clips/" + "0" * 32 + ".mp4", rng)
            copy = tmp / f"copy-{size_mib}.sqlite3"
            with (
                sqlite3.connect(userdb.database_path(user.pk)) as src,
                sqlite3.connect(copy) as dst,
            ):
                src.backup(dst)
            snapshot = len(zlib.compress(copy.read_bytes(), 1))
            result = measure(copy, args.writes, rng)
            rows.append((size_mib, reached, snapshot, result))
            print(f"   {size_mib} MiB done", file=sys.stderr, flush=True)
    columns = ["database", "pages (bytes)", "whole snapshot, compressed"]
    columns += ["WAL per autosave (p50)", "max", "ratio"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|")
    for size_mib, reached, snapshot, r in rows:
        print(
            f"| {size_mib} MiB | {reached:,} | {snapshot / 1024:,.0f} KiB "
            f"| {r['wal_bytes'] / 1024:.1f} KiB"
            f" ({r['wal_bytes'] / (r['page_size'] + 24):.0f} pages) "
            f"| {r['max'] / 1024:.1f} KiB | {snapshot / r['wal_bytes']:,.0f}x |"
        )


if __name__ == "__main__":
    main()
