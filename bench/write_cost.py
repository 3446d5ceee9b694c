"""What a durable write costs on S3: store requests, overhead, and the database's size.

    .venv/bin/python bench/write_cost.py    # --central postgres|sqlite --sizes 1 10 50
                                            # --writes 30 --big-writes 12 --count-writes 10
                                            # --profile-writes 10 --json out.json

About 2.5 minutes on the 2-core machine. Everything is measured from outside, through
real processes: a moto S3 server started here (its bucket made by the script), the
central database (PostgreSQL at 127.0.0.1:5432 in a throwaway ``reeleditor_bench_*``
database by default, or a SQLite file) and ``daphne`` serving
``reeleditor.asgi:application``, signed in like a browser:

* **durable**: the app as deployed, talking to moto directly;
* **counted**: a second daphne on the same data folder (the same machine) whose store
  requests go through ``syncstore/tests/faults/s3proxy.py``, which records each S3
  request (method, key, arrival time); one that arrives between a request's start and
  its answer is *on its path*, one that arrives after the answer is not (the next
  request waits until the store has been quiet for 0.25 s);
* **plain**: the same app on the same user database (a copy of the committed snapshot,
  downloaded by the process) with ``SyncMiddleware`` replaced by a middleware that only
  binds the user's database: the same view and the same ``synchronous=FULL`` local
  commit, without lease, freshness check, snapshot or registry. "The same write
  without sync" (the app has no setting for it; the module is written at run time).

A write is a keyframe autosave as ``static/js/framing.js`` sends it: ``PATCH
/api/projects/<p>/clips/<c>`` with the clip's 60 crop keyframes (one moved each time),
its trim and its segments; the clip is a small synthetic one uploaded through the API.
A read is ``GET /api/projects``.

For each user-database size (MiB of SQLite pages, grown with real rows: projects of 10
clips, each with 60 random-walk crop keyframes rounded as framing.js rounds, committed
through ``sync.writing`` like any unit of work), interleaved round by round: a durable
and a plain write and read, then, measured in this process, the two pieces the goal
allows: one PUT of the committed snapshot object (the same bytes, the app's store
class and client settings, a key of its own) and one registry update (``sync._commit``
for another user: the version compare-and-set and its history row in one transaction;
also a bare one-row UPDATE). Overhead = durable - plain, the median of the pairs. The
app processes' CPU time per write comes from /proc. Last, an in-process breakdown (the
Django test client in this process, timers around the sync layer's functions and the
central database's statements; not from outside) says where the overhead goes, and
the snapshot is taken as now and without fsyncing its temporary files. Printed:
markdown tables.
"""

import argparse
import functools
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from reeleditor.localcluster.processes import MotoServer  # noqa: E402 (after the path)

MIB = 1024 * 1024
BUCKET = "bench-write-cost"
PASSWORD = "bench-password-1"
KEYFRAMES = 60
CLIPS_PER_PROJECT = 10
QUIET_SECONDS = 0.25  # the store counts as quiet after this long without a request
# What every process here gets: dummy credentials for moto, production-like settings.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
APP_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "bench-write-cost-" + "x" * 40,
    "SECURE_COOKIES": "false",  # plain HTTP on 127.0.0.1
}

# The "plain" app: the same settings with SyncMiddleware replaced by one that only binds
# the signed-in user's database (what SyncMiddleware does for a read, without its
# freshness check), so a write commits locally and nothing else happens.
PLAIN_SETTINGS = '''"""The app without sync (bench/write_cost.py): bind the user's database."""

from reeleditor.settings import *  # noqa: F403
from reeleditor.settings import MIDDLEWARE as _MIDDLEWARE

MIDDLEWARE = [
    "bench_plain_settings.BindOnlyMiddleware" if name == "syncstore.middleware.SyncMiddleware"
    else name
    for name in _MIDDLEWARE
]


class BindOnlyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated:
            return self.get_response(request)
        from syncstore.binding import bound_to_user

        with bound_to_user(request.user.pk):
            return self.get_response(request)
'''


# --- Numbers -----------------------------------------------------------------------------


def p50(values):
    return statistics.median(values) if values else float("nan")


def p95(values):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return seconds * 1000


# --- Services ----------------------------------------------------------------------------


def central_database(kind: str, workdir: Path) -> tuple[str, object]:
    """A fresh central database URL and a function that removes it."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'central.sqlite3'}", lambda: None
    from syncstore.tests.faults import postgres

    reason = postgres.unavailable_reason()
    if reason:
        raise SystemExit(f"{reason} (or use --central sqlite)")
    url = postgres.fresh_database_url(prefix="reeleditor_bench")
    return url, lambda: postgres.drop_database(url)


def setup_django(database_url: str, data_dir: Path, moto_url: str) -> None:
    """This process is a machine of its own (its data folder): it grows the database,
    measures the pieces and runs the in-process breakdown."""
    os.environ.update(
        {
            **AWS_ENV,
            "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
            "DATABASE_URL": database_url,
            "REELEDITOR_DATA_DIR": str(data_dir),
            "S3_BUCKET": BUCKET,
            "S3_ENDPOINT_URL": moto_url,
            "S3_REGION": "us-east-1",
            **APP_ENV,
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "SYNC_RETRY_INTERVAL": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- The user's data ---------------------------------------------------------------------


def autosave_body(clip: dict, rng: random.Random, keyframes: list[dict]) -> dict:
    """framing.js's save of one clip: all its keyframes (one moved), trim, segments."""
    index = rng.randrange(len(keyframes))
    width = keyframes[index]["width"]
    keyframes[index]["x"] = round(rng.uniform(0, clip["width"] - width), 2)
    return {
        "crop_keyframes": keyframes,
        "trim": {"start": 0.2, "end": round(clip["duration"] - 0.2, 4)},
        "segments": [{"start": 1.0, "end": 2.0, "speed": 0.5}],
    }


def first_keyframes(clip: dict) -> list[dict]:
    height = float(clip["height"])
    width = round(height * 9 / 16, 2)
    step = clip["duration"] / KEYFRAMES
    return [
        {
            "time": round(i * step, 4),
            "x": round((clip["width"] - width) * i / KEYFRAMES, 2),
            "y": 0.0,
            "width": width,
            "height": height,
        }
        for i in range(KEYFRAMES)
    ]


def filler_keyframes(rng: random.Random, duration: float) -> list[dict]:
    """A 1920x1080 clip framed 9:16: a full-height 607.5 px window panning (random walk),
    rounded the way framing.js rounds (time 4 decimals, pixels 2)."""
    x = rng.uniform(0, 1312.5)
    out = []
    for i in range(KEYFRAMES):
        x = min(max(x + rng.gauss(0, 40), 0.0), 1312.5)
        time_ = round(i * duration / KEYFRAMES + rng.uniform(0, 0.3), 4)
        out.append({"time": time_, "x": round(x, 2), "y": 0.0, "width": 607.5, "height": 1080.0})
    return out


def database_bytes(alias: str) -> int:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute("PRAGMA page_size")
        return pages * cursor.fetchone()[0]


def grow(user_id: int, target: int, clip_file: str, rng: random.Random) -> int:
    """Add projects of clips to the user's database until it holds ``target`` bytes of
    pages; one unit of work (one committed snapshot). Returns the size reached."""
    from django.utils import timezone

    from projects.models import Clip, Project
    from syncstore import sync
    from syncstore.binding import current_binding

    def add(projects: int) -> None:
        now = timezone.now()
        made = [
            Project.objects.create(name=f"Match {rng.randrange(10**6)}", aspect_ratio="9:16")
            for _ in range(projects)
        ]
        clips = []
        for project in made:
            for position in range(CLIPS_PER_PROJECT):
                duration = round(rng.uniform(20, 60), 3)
                slow = round(rng.uniform(1, duration - 3), 3)
                clips.append(
                    Clip(
                        project=project, position=position, name=f"goal {position + 1}.mp4",
                        file=clip_file, size_bytes=rng.randrange(20, 400) * 10**6,
                        duration=duration, fps=30.0, width=1920, height=1080,
                        frame_count=round(duration * 30),
                        crop_keyframes=filler_keyframes(rng, duration),
                        trim_start=0.5, trim_end=duration - 0.5,
                        segments=[{"start": slow, "end": slow + 2.0, "speed": 0.5}],
                        edited_at=now,
                    )
                )  # fmt: skip
        Clip.objects.bulk_create(clips, batch_size=500)

    with sync.writing(user_id) as outcome:
        alias = current_binding().alias
        size = database_bytes(alias)
        if size < target:
            add(2)
            per_project = max(1, (database_bytes(alias) - size) / 2)
            while (size := database_bytes(alias)) < target:
                add(max(1, min(500, int((target - size) / per_project * 0.9))))
        size = database_bytes(alias)
    if not outcome.ok:
        raise SystemExit(f"growing the database did not commit: {outcome.results}")
    return size


# --- The app processes -------------------------------------------------------------------


def make_instance(name, workdir, database_url, endpoint, extra=None):
    from syncstore.tests.faults.instances import AppInstance

    env = {
        **APP_ENV,
        # Uploads of a 50 MiB database's snapshot take longer than the fault suite's 3 s.
        "SNAPSHOT_READ_TIMEOUT": "30",
        "SNAPSHOT_CONNECT_TIMEOUT": "5",
        **(extra or {}),
    }
    return AppInstance(
        name, workdir, database_url=database_url, s3_endpoint_url=endpoint, bucket=BUCKET,
        extra_env=env,
    )  # fmt: skip


def checked(response, status=200, sync_status="ok"):
    if response.status != status or (sync_status and response.sync != sync_status):
        raise SystemExit(f"unexpected answer {response.status} {response.sync}: {response.text}")
    return response


def timed(call):
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


# --- Store requests on and off the write's path ------------------------------------------


def request_kind(record, user_id: int) -> str:
    if record.method == "GET" and not record.key and record.list_prefix is not None:
        kind = "LIST"
    else:
        kind = record.method
    where = record.key or record.list_prefix or ""
    if where.startswith(f"snapshots/{user_id}/"):
        return f"{kind} snapshot"
    return f"{kind} {where.split('/', 1)[0] or 'bucket'}"


def wait_until_quiet(proxy, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    seen, since = len(proxy.requests()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now_seen = len(proxy.requests())
        if now_seen != seen:
            seen, since = now_seen, time.monotonic()
        elif time.monotonic() - since >= QUIET_SECONDS:
            return


def count_requests(proxy, client, clip_path, body, user_id, writes, reads) -> dict:
    """Each request's store requests, before its answer and after it."""
    wait_until_quiet(proxy)
    proxy.reset_counts()
    windows = []
    for i in range(writes + reads):
        is_write = i < writes
        start = time.monotonic()
        if is_write:
            checked(client.patch(clip_path, body()))
        else:
            checked(client.get("/api/projects"))
        end = time.monotonic()
        wait_until_quiet(proxy)
        windows.append((is_write, start, end))
    records = proxy.requests()
    result = {"write_before": [], "write_after": [], "read_before": [], "read_after": []}
    for index, (is_write, start, end) in enumerate(windows):
        following = windows[index + 1][1] if index + 1 < len(windows) else float("inf")
        before = Counter(request_kind(r, user_id) for r in records if start <= r.at <= end)
        after = Counter(request_kind(r, user_id) for r in records if end < r.at < following)
        prefix = "write" if is_write else "read"
        result[f"{prefix}_before"].append(before)
        result[f"{prefix}_after"].append(after)
    return result


def describe_counts(counters: list[Counter]) -> str:
    if not counters:
        return "-"
    total = sum(counters, Counter())
    if not total:
        return "none"
    parts = []
    for kind, count in sorted(total.items()):
        per = [c[kind] for c in counters]
        writes_with = sum(1 for n in per if n)
        if writes_with == len(counters) and min(per) == max(per):
            parts.append(f"{kind} {per[0]} each")
        else:
            parts.append(f"{kind} {count} in {len(counters)} (in {writes_with} of them)")
    return ", ".join(parts)


# --- The pieces the goal allows, measured here -------------------------------------------


class Pieces:
    def __init__(self, user_id: int, object_key: str, workdir: Path):
        from syncstore.models import SyncState
        from syncstore.stores import get_store

        self.store = get_store()
        self.user_id = user_id
        self.object = workdir / f"piece-{uuid.uuid4().hex}.sqlite3.z"
        self.store.get_file(object_key, self.object)
        self.size = self.object.stat().st_size
        row = SyncState.objects.ensure(user_id)
        self.version = row.version
        # What sync._commit reads of a lease: the bare compare-and-set, no claim to clear.
        self.holder = SimpleNamespace(fence=row.fence, row=row, ends_with_commit=False)
        self.packed = SimpleNamespace(size_bytes=self.size, checksum="0" * 64, kind="segment")

    def put(self) -> float:
        key = f"bench/put-{uuid.uuid4().hex}.sqlite3.z"
        seconds, _ = timed(lambda: self.store.put_file(key, self.object))
        return seconds

    def commit(self) -> float:
        from syncstore import sync
        from syncstore.keys import snapshot_key

        key = snapshot_key(self.user_id, self.version + 1)
        seconds, committed = timed(
            lambda: sync._commit(self.user_id, self.version, self.holder, key, self.packed)
        )
        if not committed:
            raise SystemExit("the registry piece's compare-and-set failed")
        self.version += 1
        return seconds

    def update(self) -> float:
        from django.utils import timezone

        from syncstore.models import SyncState

        rows = SyncState.objects.filter(user_id=self.user_id)
        seconds, _ = timed(lambda: rows.update(updated_at=timezone.now()))
        return seconds

    def close(self):
        self.object.unlink(missing_ok=True)


# --- In-process breakdown ----------------------------------------------------------------


PUSH = "push (all of it)"
TAKE = "  push: whole snapshot (first push, or the chain broke)"
SEGMENT = "  push: segment (the WAL frames since the last push)"
AFTER = "after the answer: images, retention"


class Breakdown:
    """Timers around the sync layer's functions, in this process only (production code
    is not changed): inclusive seconds per step of each write, how many central-database
    statements it made, and how many fsyncs Python asked for."""

    # (module or class, function, label); leading spaces: a part of the step above.
    STEPS = (
        ("leases.Lease", "acquire", "lease: take (flock, claim UPDATE ... RETURNING the row)"),
        ("sync", "ensure_fresh", "ensure_fresh (working.json; the row came with the claim)"),
        (None, None, "the view (the write itself, synchronous=FULL)"),
        ("sync", "push", PUSH),
        ("walsegments", "take", SEGMENT),
        ("snapshots", "take", TAKE),
        ("snapshots", "_backup", "    snapshot: backup API into a temporary image"),
        ("snapshots", "_compress", "    snapshot: zlib 1 + sha256"),
        ("sync", "_upload_recording_pending", "  push: PUT, working.json pending beside it"),
        ("stores.S3SnapshotStore", "put_file", "    PUT itself"),
        ("workingcopy", "mark_pending", "    working.json pending (fsync x2, its own thread)"),
        ("sync", "_commit", "  push: registry commit (CAS + history row)"),
        ("workingcopy", "mark_committed", "  push: working.json committed (fsync x2)"),
        ("sync", "_restart_wal_if_due", "  push: WAL checkpoint when due"),
        ("leases.Lease", "release", "lease: release (flock; the commit cleared the claim)"),
        ("retention", "after_commits", AFTER),
        ("compaction", "make_image_if_due", "  after: a whole image when due"),
    )
    VIEW = STEPS[2][2]

    def __init__(self):
        self.current = defaultdict(float)
        self.statements = []
        self.samples: list[dict] = []
        self._patched = []

    def wrap(self, owner, name, label):
        original = owner.__dict__[name]
        function = original.__func__ if isinstance(original, classmethod) else original
        timers = self

        @functools.wraps(function)
        def timed_call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                timers.current[label] += time.perf_counter() - start

        replacement = classmethod(timed_call) if isinstance(original, classmethod) else timed_call
        setattr(owner, name, replacement)
        self._patched.append((owner, name, original))

    def install(self):
        import importlib

        from syncstore import changecounter, middleware

        for where, name, label in self.STEPS:
            if where is None:
                continue
            module, _, cls = where.partition(".")
            owner = importlib.import_module(f"syncstore.{module}")
            self.wrap(getattr(owner, cls) if cls else owner, name, label)
        self.wrap(os, "fsync", "(inside) os.fsync")
        self.wrap(changecounter, "read_file", "(inside) change counter read (opens the file)")
        original_init = middleware.SyncMiddleware.__init__
        timers = self

        def init(mw, get_response):
            def view(request):
                start = time.perf_counter()
                try:
                    return get_response(request)
                finally:
                    timers.current[timers.VIEW] += time.perf_counter() - start

            original_init(mw, view)

        middleware.SyncMiddleware.__init__ = init
        self._patched.append((middleware.SyncMiddleware, "__init__", original_init))

    def uninstall(self):
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)

    def _note_statement(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((sql, time.perf_counter() - start))

    def run(self, user, clip_path, body, writes) -> dict:
        from django.db import connections
        from django.test import Client

        client = Client()
        client.force_login(user)
        self.install()
        counts = defaultdict(list)
        example = []
        try:
            for i in range(writes + 2):  # the first two pull and warm up
                self.current, self.statements = defaultdict(float), []
                payload = json.dumps(body())
                with connections["default"].execute_wrapper(self._note_statement):
                    start = time.perf_counter()
                    response = client.patch(clip_path, payload, content_type="application/json")
                    total = time.perf_counter() - start
                if response.status_code != 200 or response["X-Sync-Status"] != "ok":
                    raise SystemExit(f"in-process write failed: {response.status_code}")
                if i < 2:
                    continue
                self.samples.append({**self.current, "total": total})
                verbs = Counter(sql.split()[0].upper() for sql, _ in self.statements)
                for verb in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                    counts[verb].append(verbs.get(verb, 0))
                counts["all"].append(len(self.statements))
                example = example or [sql[:110] for sql, _ in self.statements]
        finally:
            self.uninstall()
        return {"steps": self._steps(), "statements": counts, "example": example}

    def _steps(self) -> dict[str, float]:
        def median(label):
            return p50([s.get(label, 0.0) for s in self.samples])

        labels = [label for _, _, label in self.STEPS]
        top = [k for k in labels if not k.startswith(" ") and k != AFTER]
        push_parts = [k for k in labels if k.startswith("  push:")]
        take_parts = [k for k in labels if k.startswith("    snapshot:")]
        result = {}
        for label in labels:
            if label == AFTER:
                answer = [s["total"] - s.get(AFTER, 0.0) for s in self.samples]
                rest = [
                    a - sum(s.get(k, 0.0) for k in top)
                    for a, s in zip(answer, self.samples, strict=True)
                ]
                result["Django, other middleware, binding: the rest"] = p50(rest)
                result["**the answer** (in-process, no HTTP)"] = p50(answer)
            result[label] = median(label)
            if label == take_parts[-1]:
                result["    snapshot: the rest (change counter read, temp files)"] = p50(
                    [
                        s.get(TAKE, 0.0) - sum(s.get(k, 0.0) for k in take_parts)
                        for s in self.samples
                    ]
                )
            if label == push_parts[-1]:
                result["  push: the rest (copy lock, read_state, resolve_pending)"] = p50(
                    [
                        s.get(PUSH, 0.0) - sum(s.get(k, 0.0) for k in push_parts)
                        for s in self.samples
                    ]
                )
        for label in ("(inside) os.fsync", "(inside) change counter read (opens the file)"):
            result[label] = median(label)
        return result


# --- The run -----------------------------------------------------------------------------


BIG_MIB = 20  # from this size on, --big-writes latency rounds (each write takes seconds)


def say(ctx, what: str) -> None:
    print(f"   {time.monotonic() - ctx.started:5.0f} s  {what}", flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far, all its threads (ended ones too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_size(ctx, size_mib: int) -> dict:
    from django.contrib.auth import get_user_model

    from syncstore.models import SnapshotVersion, SyncState

    args, user_id, path, body = ctx.args, ctx.user_id, ctx.clip_path, ctx.body
    target = size_mib * MIB
    print(f"\n== {size_mib} MiB", flush=True)
    say(ctx, "growing the user's database")
    reached = grow(user_id, target, ctx.clip_file, ctx.rng)

    # Warm up: the durable machine pulls the grown version on its first write.
    for client in (ctx.durable_client, ctx.counted_client):
        checked(client.get("/api/projects"))
        checked(client.patch(ctx.clip_path, ctx.body()))
    plain = make_instance(
        f"plain-{size_mib}", ctx.workdir / f"plain-{size_mib}", ctx.database_url, ctx.moto_url,
        {"DJANGO_SETTINGS_MODULE": "bench_plain_settings", "PYTHONPATH": str(ctx.pymod)},
    )  # fmt: skip
    plain.start()
    ctx.instances.append(plain)
    plain_client = ctx.durable_client.on(plain)
    try:
        for _ in range(2):
            checked(plain_client.get("/api/projects"), sync_status=None)
            checked(plain_client.patch(ctx.clip_path, ctx.body()), sync_status=None)

        say(ctx, f"counting store requests ({args.count_writes} writes, {args.count_reads} reads)")
        counts = count_requests(
            ctx.proxy, ctx.counted_client, ctx.clip_path, ctx.body, user_id,
            args.count_writes, args.count_reads,
        )  # fmt: skip

        rounds = args.writes if size_mib < BIG_MIB else args.big_writes
        say(ctx, f"latency: {rounds} rounds of durable/plain write, read, pieces")
        row = SyncState.objects.get(user_id=user_id)
        pieces = Pieces(ctx.dummy_id, row.object_key, ctx.workdir)
        pieces.put(), pieces.commit(), pieces.update()  # connections, first-use costs
        first_version = row.version + 1
        samples = defaultdict(list)
        sides = [
            ("durable", ctx.durable_client, ctx.durable.pid),
            ("plain", plain_client, plain.pid),
        ]
        for i in range(rounds):
            order = sides if i % 2 == 0 else sides[::-1]
            for name, client, pid in order:
                expect = "ok" if name == "durable" else None
                cpu = cpu_seconds(pid)
                seconds, _ = timed(
                    lambda c=client, e=expect: checked(c.patch(path, body()), sync_status=e)
                )
                time.sleep(0.1)  # the durable write's retention runs after its answer
                samples[f"{name} write"].append(seconds)
                samples[f"{name} write cpu"].append(cpu_seconds(pid) - cpu)
            for name, client, _pid in order:
                expect = "ok" if name == "durable" else None
                seconds, _ = timed(
                    lambda c=client, e=expect: checked(c.get("/api/projects"), sync_status=e)
                )
                samples[f"{name} read"].append(seconds)
            samples["PUT"].append(pieces.put())
            samples["commit"].append(pieces.commit())
            samples["update"].append(pieces.update())
        last_version = SyncState.objects.get(user_id=user_id).version
        uploaded = list(
            SnapshotVersion.objects.filter(
                user_id=user_id, version__gte=first_version, version__lte=last_version
            ).values_list("size_bytes", flat=True)
        )
        piece_size = pieces.size
        pieces.close()
    finally:
        plain.terminate()

    breakdown = {}
    if args.profile_writes:
        say(ctx, f"in-process breakdown ({args.profile_writes} writes)")
        user = get_user_model().objects.get(pk=user_id)
        breakdown = Breakdown().run(user, ctx.clip_path, ctx.body, args.profile_writes)

    pairs = [d - p for d, p in zip(samples["durable write"], samples["plain write"], strict=True)]
    budget = [u + c for u, c in zip(samples["PUT"], samples["commit"], strict=True)]
    return {
        "size_mib": size_mib,
        "database_bytes": reached,
        "snapshot_bytes": p50(uploaded) if uploaded else piece_size,
        "counts": counts,
        "samples": dict(samples),
        "overhead": pairs,
        "budget": budget,
        "breakdown": breakdown,
    }


def report(results, args):
    print(f"\n## Results ({args.central} central database, moto S3, daphne)\n")
    print("Store requests per request, counted at the proxy:\n")
    print("| database | writes | before the answer | after the answer | reads: any |")
    print("|---|---|---|---|---|")
    for r in results:
        c = r["counts"]
        reads = describe_counts(c["read_before"] + c["read_after"])
        print(
            f"| {r['size_mib']} MiB | {len(c['write_before'])} | "
            f"{describe_counts(c['write_before'])} | {describe_counts(c['write_after'])} | "
            f"{reads} |"
        )
    print("\nLatency from outside, ms, p50 / p95:\n")
    print(
        "| database | object uploaded (p50) | read durable | read plain | autosave durable | "
        "autosave plain | overhead (pairs) | one PUT | one commit | one bare UPDATE | "
        "PUT + commit | overhead / (PUT + commit) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["samples"]

        def cell(values):
            return f"{ms(p50(values)):.1f} / {ms(p95(values)):.1f}"

        ratio = p50(r["overhead"]) / p50(r["budget"])
        print(
            f"| {r['database_bytes'] / MIB:.1f} MiB | {r['snapshot_bytes'] / 1024:.0f} KiB | "
            f"{cell(s['durable read'])} | {cell(s['plain read'])} | "
            f"{cell(s['durable write'])} | {cell(s['plain write'])} | {cell(r['overhead'])} | "
            f"{cell(s['PUT'])} | {cell(s['commit'])} | {cell(s['update'])} | "
            f"{cell(r['budget'])} | {ratio:.2f} |"
        )
    print("\nCPU time of the app process per write (mean ms over the rounds, /proc ticks;")
    print("moto's and the central database's own CPU not included):\n")
    print("| database | durable | plain | durable - plain |")
    print("|---|---|---|---|")
    for r in results:
        durable = statistics.mean(r["samples"]["durable write cpu"])
        plain = statistics.mean(r["samples"]["plain write cpu"])
        print(
            f"| {r['size_mib']} MiB | {ms(durable):.1f} | {ms(plain):.1f} | "
            f"{ms(durable - plain):.1f} |"
        )
    done = [r for r in results if r["breakdown"]]
    if not done:
        return
    print("\nWhere a durable write's time goes (in-process, Django test client; p50 ms):\n")
    labels = []
    for r in done:
        labels += [k for k in r["breakdown"]["steps"] if k not in labels]
    print("| step | " + " | ".join(f"{r['size_mib']} MiB" for r in done) + " |")
    print("|---|" + "---|" * len(done))
    for label in labels:
        cells = " | ".join(f"{ms(r['breakdown']['steps'].get(label, 0)):.1f}" for r in done)
        depth = (len(label) - len(label.lstrip())) // 2
        print(f"| {'- ' * depth}{label.strip()} | {cells} |")
    print("\nCentral-database statements per durable write (p50; the plain write makes the")
    print("session and user SELECTs only):\n")
    print("| database | all | SELECT | INSERT | UPDATE | DELETE |")
    print("|---|---|---|---|---|---|")
    for r in done:
        c = r["breakdown"]["statements"]
        verbs = ("all", "SELECT", "INSERT", "UPDATE", "DELETE")
        print(f"| {r['size_mib']} MiB | " + " | ".join(f"{p50(c[v]):g}" for v in verbs) + " |")
    print("\nOne durable write's central-database statements, in order (the first sample):\n")
    for sql in done[0]["breakdown"]["example"]:
        print(f"    {sql}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--central", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50], help="MiB")
    parser.add_argument("--writes", type=int, default=30, help="latency rounds per size")
    parser.add_argument("--big-writes", type=int, default=12, help=f"rounds from {BIG_MIB} MiB")
    parser.add_argument("--count-writes", type=int, default=10)
    parser.add_argument("--count-reads", type=int, default=3)
    parser.add_argument("--profile-writes", type=int, default=10, help="0: no breakdown")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    started = time.monotonic()

    workdir = Path(tempfile.mkdtemp(prefix="bench-write-cost-"))
    pymod = workdir / "pymod"
    pymod.mkdir()
    (pymod / "bench_plain_settings.py").write_text(PLAIN_SETTINGS)
    moto = MotoServer(workdir, env={**os.environ, **AWS_ENV}).start(timeout=30)
    moto_url = moto.url
    database_url, drop_database = central_database(args.central, workdir)
    instances, proxy = [], None
    try:
        setup_django(database_url, workdir / "bench-machine", moto_url)
        import boto3
        from django.contrib.auth import get_user_model

        from projects.synthetic import write_game_clip
        from syncstore.tests.faults.s3proxy import S3FaultProxy

        boto3.session.Session().client(
            "s3", endpoint_url=moto_url, region_name="us-east-1"
        ).create_bucket(Bucket=BUCKET)
        proxy = S3FaultProxy(moto_url).start()
        users = get_user_model().objects
        user = users.create_user("bench", password=PASSWORD)
        dummy = users.create_user("registry-piece", password=PASSWORD)

        durable = make_instance("durable", workdir / "machine-a", database_url, moto_url)
        counted = make_instance("counted", workdir / "machine-a", database_url, proxy.url)
        instances += [durable, counted]
        for instance in instances:
            instance.launch()
        for instance in instances:
            instance.wait_until_up()
        durable_client = durable.client("bench", PASSWORD)
        made = checked(
            durable_client.post("/api/projects", {"name": "Reel", "aspect_ratio": "9:16"}), 201
        ).json
        clip_file = workdir / "clip.mp4"
        write_game_clip(clip_file, width=320, height=180, fps=30, seconds=4.0)
        with open(clip_file, "rb") as handle:
            clip = checked(
                durable_client.post(
                    f"/api/projects/{made['id']}/clips", files={"file": ("game.mp4", handle)}
                ),
                201,
            ).json
        from projects.models import Clip
        from syncstore.binding import bound_to_user

        with bound_to_user(user.pk):  # this machine downloads the committed snapshot
            stored_name = Clip.objects.get(pk=clip["id"]).file
        rng = random.Random(20240601)
        keyframes = first_keyframes(clip)
        ctx = SimpleNamespace(
            args=args, user_id=user.pk, dummy_id=dummy.pk, workdir=workdir, pymod=pymod,
            database_url=database_url, moto_url=moto_url, proxy=proxy, instances=instances,
            durable_client=durable_client, counted_client=durable_client.on(counted),
            clip_path=f"/api/projects/{made['id']}/clips/{clip['id']}", clip_file=stored_name,
            rng=rng, body=lambda: autosave_body(clip, rng, keyframes), durable=durable,
            started=started,
        )  # fmt: skip
        results = [measure_size(ctx, size) for size in sorted(args.sizes)]
        report(results, args)
        if args.json:
            args.json.write_text(json.dumps(results, default=dict, indent=1))
        print(f"\n(took {time.monotonic() - started:.0f} s; work folder {workdir})")
    finally:
        for instance in instances:
            instance.terminate()
        if proxy is not None:
            proxy.stop()
        moto.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django never got configured
            pass
        drop_database()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
