"""Where one request's time goes: cProfile over many reads and writes, in process.

    .venv/bin/python bench/profile_request.py            # --requests 300 --top 25
    .venv/bin/python bench/profile_request.py --dump out.prof   # for snakeviz / pstats

The embedded default in production settings (SQLite central database, local-folder
store) in a temporary data folder, driven by Django's test client in this process (no
server: daphne's own share is not in it). One user with a project and a clip; a read
is ``GET /api/projects``, a write a keyframe autosave (``PATCH`` of the clip with five
crop keyframes, one moved each time). Printed per kind: the mean wall time per request,
then the functions with the most time inside them (own time, summed over the run), and
the time spent in each part of the stack (Django's request handling, sessions and auth,
the sync layer, SQLite, the view's own code), so what a request need not do shows.
"""

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Where a function's own time is counted: the first prefix of its file that matches.
PARTS = (
    ("syncstore/", "sync layer (syncstore)"),
    ("projects/", "the view and its models (projects)"),
    ("django/contrib/sessions", "sessions"),
    ("django/contrib/auth", "auth"),
    ("django/db/backends/sqlite3", "SQLite backend (Django)"),
    ("django/db/", "ORM (Django)"),
    ("django/", "request handling (Django)"),
    ("{built-in method _sqlite3", "SQLite itself"),
    ("<method 'execute' of 'sqlite3", "SQLite itself"),
    ("<method 'commit' of 'sqlite3", "SQLite itself (commits: fsync)"),
    ("{built-in method posix", "file system calls"),
    ("<built-in method posix", "file system calls"),
    ("{built-in method io", "file system calls"),
    ("json/", "JSON"),
)


def setup(data_dir: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
            "REELEDITOR_DATA_DIR": str(data_dir),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-profile-" + "x" * 40,
            "SECURE_COOKIES": "false",
            "ALLOWED_HOSTS": "testserver",
            "SYNC_RETRY_INTERVAL": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_user_and_clip(workdir: Path):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from projects.synthetic import write_game_clip

    user = get_user_model().objects.create_user("coach", password="profile-pw-1")
    client = Client()
    client.force_login(user)
    project = client.post(
        "/api/projects", {"name": "Cup", "aspect_ratio": "9:16"}, content_type="application/json"
    ).json()
    clip_path = workdir / "clip.mp4"
    write_game_clip(clip_path, width=320, height=180, fps=30, seconds=2.0)
    with open(clip_path, "rb") as handle:
        clip = client.post(f"/api/projects/{project['id']}/clips", {"file": handle}).json()
    return client, f"/api/projects/{project['id']}/clips/{clip['id']}"


# Steps of a request, timed inclusively (the function and everything it calls).
STEPS = (
    ("django/contrib/sessions/backends/db.py", "load", "session: load from the central database"),
    ("django/contrib/auth/__init__.py", "get_user", "auth: the user row"),
    ("syncstore/middleware.py", "__call__", "SyncMiddleware (everything inside it)"),
    ("syncstore/leases.py", "acquire", "  lease: take"),
    ("syncstore/sync.py", "ensure_fresh", "  freshness check"),
    ("syncstore/binding.py", "bound_to_user", "  bind the user's database"),
    ("projects/api.py", "clip", "  the view: clip autosave"),
    ("projects/api.py", "projects", "  the view: projects list"),
    ("syncstore/sync.py", "push", "  push"),
    ("syncstore/walsegments.py", "take", "    segment"),
    ("syncstore/sync.py", "_commit", "    registry commit"),
    ("syncstore/workingcopy.py", "write_state", "    working.json writes"),
    ("syncstore/leases.py", "release", "  lease: release"),
    ("syncstore/sync.py", "request_status", "  X-Sync-Status of a read"),
    ("syncstore/changecounter.py", "read_file", "(inside) change counter reads (opens the file)"),
    ("syncstore/workingcopy.py", "_read_stored", "(inside) working.json reads"),
)


def steps(stats, requests: int) -> None:
    print("\nSteps, inclusive (ms per request, calls per request):\n")
    print("| step | ms | calls |")
    print("|---|---|---|")
    for suffix, name, label in STEPS:
        found = [
            entry
            for (filename, _, function), entry in stats.stats.items()
            if filename.endswith(suffix) and function == name
        ]
        if not found:
            continue
        calls = sum(entry[1] for entry in found)
        seconds = sum(entry[3] for entry in found)
        if calls:
            print(f"| {label} | {seconds / requests * 1000:.2f} | {calls / requests:g} |")


def part_of(func) -> str:
    filename, _, name = func
    where = f"{filename} {name}"
    for prefix, part in PARTS:
        if prefix in where:
            return part
    return "other (Python, asgiref, stdlib)"


def profile(label, call, requests: int, top: int, dump: Path | None) -> None:
    for _ in range(10):
        call()  # warm: first-use costs are not the steady state
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(requests):
        call()
    profiler.disable()
    wall = (time.perf_counter() - started) / requests
    stats = pstats.Stats(profiler)
    if dump:
        stats.dump_stats(f"{dump}.{label}")
    total = sum(entry[2] for entry in stats.stats.values())  # own time, all functions
    print(f"\n## {label}: {wall * 1000:.2f} ms per request (wall, under the profiler)\n")
    parts = defaultdict(float)
    for func, entry in stats.stats.items():
        parts[part_of(func)] += entry[2]
    print("| part of the stack | ms per request | share |")
    print("|---|---|---|")
    for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"| {part} | {seconds / requests * 1000:.2f} | {seconds / total:.0%} |")
    steps(stats, requests)
    print(f"\nTop {top} functions by own time (ms per request, calls per request):\n")
    print("| function | ms | calls |")
    print("|---|---|---|")
    ranked = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, name), entry in ranked:
        where = filename.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        print(f"| `{where}:{line} {name}` | {entry[2] / requests * 1000:.3f} | "
              f"{entry[1] / requests:g} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", type=Path, help="write <path>.read and <path>.write")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    setup(workdir / "data")
    client, clip_url = make_user_and_clip(workdir)
    rng = random.Random(7)
    keyframes = [{"time": t * 0.5, "x": 100.0, "y": 0.0, "width": 101.25, "height": 180.0}
                 for t in range(5)]  # fmt: skip

    def read():
        response = client.get("/api/projects")
        assert response.status_code == 200, response.content

    def write():
        keyframes[rng.randrange(5)]["x"] = round(rng.uniform(0, 200), 2)
        response = client.patch(clip_url, {"crop_keyframes": keyframes},
                                content_type="application/json")  # fmt: skip
        assert response.status_code == 200 and response["X-Sync-Status"] == "ok", response

    profile("read (GET /api/projects)", read, args.requests, args.top, args.dump)
    profile("write (keyframe autosave)", write, args.requests, args.top, args.dump)
    print(f"\n(work folder {workdir})")


if __name__ == "__main__":
    main()
