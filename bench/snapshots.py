"""What a snapshot costs, and whether compressing it pays.

    .venv/bin/python bench/snapshots.py

Builds user databases of growing size (clips with realistic keyframe JSON), then
times the three steps of a push that do not involve the network: the online backup,
zlib level 1, and the checksum, and reports the compression ratio. Results go in
docs/architecture.md.
"""

import os
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reeleditor.settings")
os.environ["REELEDITOR_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-snapshots-")

import django

django.setup()

from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)  # the central database holds the sync registry

from projects.models import Clip, Project  # noqa: E402
from syncstore import snapshots, userdb  # noqa: E402
from syncstore.binding import bound_to_user  # noqa: E402


def fill(user_id: int, clips: int) -> Path:
    with bound_to_user(user_id):
        project = Project.objects.create(name=f"bench {clips}", aspect_ratio="9:16")
        keyframes = [
            {"time": t / 10, "x": 500.0 + t, "y": 0.0, "width": 607.5, "height": 1080.0}
            for t in range(60)
        ]
        Clip.objects.bulk_create(
            Clip(
                project=project, position=i, name=f"clip {i}.mp4", file=f"clips/{i:032x}.mp4",
                size_bytes=10**8, duration=60, fps=30, width=1920, height=1080, frame_count=1800,
                crop_keyframes=keyframes, segments=[{"start": 1.0, "end": 2.0, "speed": 0.5}],
            )
            for i in range(clips)
        )  # fmt: skip
    return userdb.database_path(user_id)


def measure(db: Path, workdir: Path, runs: int = 5):
    backup, packed_times, sizes = [], [], None
    for _ in range(runs):
        image = workdir / "image.sqlite3"
        start = time.perf_counter()
        snapshots._backup(db, image)
        backup.append(time.perf_counter() - start)
        start = time.perf_counter()
        packed = snapshots.take(db, workdir)
        packed_times.append(time.perf_counter() - start)
        sizes = (image.stat().st_size, packed.size_bytes)
        packed.path.unlink()
        image.unlink()
    raw = db.read_bytes()
    start = time.perf_counter()
    zlib.compress(raw, 1)
    compress_ms = (time.perf_counter() - start) * 1000
    return (
        statistics.median(backup) * 1000,
        statistics.median(packed_times) * 1000,
        compress_ms,
        sizes,
    )


def main():
    workdir = Path(tempfile.mkdtemp(prefix="bench-snapshot-work-"))
    print(
        "| clips | database KiB | backup ms | take ms (backup + zlib 1 + sha256) "
        "| zlib ms | compressed KiB | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for user_id, clips in enumerate([10, 100, 1000, 5000], start=1):
        db = fill(user_id, clips)
        backup_ms, take_ms, zlib_ms, (raw, packed) = measure(db, workdir)
        print(
            f"| {clips} | {raw / 1024:.0f} | {backup_ms:.1f} | {take_ms:.1f} | {zlib_ms:.1f} "
            f"| {packed / 1024:.0f} | {raw / packed:.1f}x |"
        )


if __name__ == "__main__":
    main()
