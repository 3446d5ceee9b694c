"""Per-user databases vs one central database: the projects list and a keyframe autosave
under concurrency, the two designs served side by side and measured in turns, in one run.

    .venv/bin/python bench/central_vs_peruser.py [--users 8] [--seconds 5] [--rounds 4]
        [--store moto|local] [--projects 10] [--clips 1] [--keyframes 8] [--keep]

Two configurations, each its own daphne process (as production serves the app) with its
own data folder and its own fresh PostgreSQL central database (``reeleditor_bench_*``,
dropped at the end):

- **per-user**: the app as deployed (``reeleditor.settings``): each user's projects in
  their own SQLite file, a read checks the registry, a write takes the user's lease and
  pushes a snapshot to the store before answering. The store is a moto S3 server on
  127.0.0.1 (``--store moto``, default; the media bucket too, as with ``S3_BUCKET``) or
  a local folder (``--store local``, ``SNAPSHOT_LOCAL_DIR``).
- **central**: the same views and models with the ``projects`` tables in the central
  PostgreSQL database (``bench/central_settings.py``: no router, no ``SyncMiddleware``;
  ``bench/central_app.py`` adds the owner column and filter isolation then needs).

Both run with ``DJANGO_DEBUG=false``, the same media storage and the default
``DATABASE_CONN_MAX_AGE=0`` (a new PostgreSQL connection per request, as deployed; Django's
docs say to disable persistent connections under ASGI). ``--users`` simulated
users, each with its own signed-in session (``/accounts/login/`` with the form's CSRF
token), ``--projects`` projects and ``--clips`` clips (a small synthetic H.264 clip
uploaded through the API, one per project), all made through the API before measuring.

Two phases, each a closed loop (every user sends its next request when the last one is
answered) for ``--seconds``:

- **list**: ``GET /api/projects`` (the projects list, with its clip counts);
- **autosave**: ``PATCH /api/projects/<id>/clips/<id>`` with ``--keyframes`` crop
  keyframes, what ``static/js/framing.js`` autosaves (a new rectangle each time).

Each round measures both phases on both configurations, adjacent in time (list:
per-user, central; autosave: per-user, central; the next round starts with central), so
both see the same machine load. Printed: p50/p95 latency (ms, pooled over the rounds),
requests per second, CPU ms per request of daphne (and of moto, the store, which shares
the machine here), and per-user/central ratios (pooled, and the range over rounds).
Every answer must be 200 (and ``X-Sync-Status: ok`` for the per-user writes); the run
ends with how many snapshots were committed.
"""

import argparse
import contextlib
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from reeleditor.localcluster.cluster import clean_environment  # noqa: E402 (after the path)
from reeleditor.localcluster.processes import MotoServer, free_port  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password-1"
START_TIMEOUT = 60.0
DAPHNE = [sys.executable, "-m", "daphne", "-b", "127.0.0.1"]
CLIP = dict(width=640, height=360, fps=30, seconds=2.0)
CONFIGS = ("per-user", "central")
PHASES = ("list", "autosave")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_http(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited while starting:\n{log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in {START_TIMEOUT}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


# --- One configuration: its database, data folder and daphne ---------------------------


@dataclass
class Server:
    name: str
    settings: str
    database: str
    workdir: Path
    store_env: dict
    store_pid: int | None  # moto's process, when this design's writes go to it
    port: int = 0
    process: subprocess.Popen | None = None
    env: dict = field(default_factory=dict)

    def __post_init__(self):
        self.data_dir = self.workdir / "data"
        self.log = self.workdir / "daphne.log"
        self.env = clean_environment()  # the developer's shell must not configure them
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": self.settings,
                "PYTHONUNBUFFERED": "1",
                "REELEDITOR_DATA_DIR": str(self.data_dir),
                "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.database}",
                "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
                "SECURE_COOKIES": "false",  # plain HTTP on 127.0.0.1
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "EXPORT_MODE": "mock",
                "LOG_LEVEL": "WARNING",
                **self.store_env,
            }
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode:
            raise SystemExit(
                f"{self.name}: manage.py {' '.join(args)} failed:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def start(self) -> None:
        self.port = free_port()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*DAPHNE, "-p", str(self.port), "reeleditor.asgi:application"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for_http(self.url + "/accounts/login/", self.process, self.log)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by daphne, and by the store's process (moto)."""
        store = cpu_seconds(self.store_pid) if self.store_pid else 0.0
        return cpu_seconds(self.process.pid), store


# migrate, then the users, in one process (a Django start costs seconds on a busy
# machine). One password hash for all (PBKDF2 costs ~0.6 s here); each user signs in.
_MIGRATE_AND_CREATE_USERS = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
User = get_user_model()
hashed = make_password({password!r})
User.objects.bulk_create(User(username=f"bench{{i}}", password=hashed) for i in range({n}))
"""


# --- A signed-in user ------------------------------------------------------------------


class User:
    def __init__(self, server: Server, username: str):
        self.server = server
        self.session = requests.Session()
        self.username = username
        self.clip: dict | None = None
        self.project_id: int | None = None

    def login(self) -> None:
        url = self.server.url + "/accounts/login/"
        page = self.session.get(url, timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        response = self.session.post(
            url,
            data={"csrfmiddlewaretoken": token, "username": self.username, "password": PASSWORD},
            headers={"Referer": url},
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code != 302:
            raise SystemExit(f"sign-in of {self.username} failed: {response.status_code}")

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", "")}
        return self.session.request(
            method, self.server.url + path, headers=headers, timeout=60, **kwargs
        )

    def checked(self, method: str, path: str, status: int, **kwargs) -> dict:
        response = self.request(method, path, **kwargs)
        if response.status_code != status:
            raise SystemExit(
                f"{self.server.name}: {method} {path}: {response.status_code} {response.text[:500]}"
            )
        if self.server.name == "per-user" and method != "GET":
            assert response.headers.get("X-Sync-Status") == "ok", response.headers
        return response.json()


def set_up_user(user: User, projects: int, clips: int, clip_bytes: bytes) -> None:
    user.login()
    made = [
        user.checked(
            "POST",
            "/api/projects",
            201,
            json={"name": f"{user.username} p{i}", "aspect_ratio": "9:16"},
        )
        for i in range(projects)
    ]
    for project in made[:clips]:
        clip = user.checked(
            "POST",
            f"/api/projects/{project['id']}/clips",
            201,
            files={"file": ("game.mp4", clip_bytes, "video/mp4")},
        )
        if user.clip is None:
            user.clip, user.project_id = clip, project["id"]


def check_isolation(config: str, users: list[User]) -> None:
    """A user sees only their own projects (per-user: ids repeat across users' databases,
    so another user's id is one of your own projects or 404; central: always 404)."""
    first, last = users[0], users[-1]
    names = [p["name"] for p in first.checked("GET", "/api/projects", 200)["projects"]]
    assert all(name.startswith(f"{first.username} ") for name in names), (config, names)
    response = first.request("GET", f"/api/projects/{last.project_id}")
    if first is not last and response.status_code != 404:
        assert config == "per-user" and response.status_code == 200, (config, response)
        assert response.json()["name"].startswith(f"{first.username} "), (config, response)


def keyframes(clip: dict, count: int, rng: random.Random) -> list[dict]:
    """``count`` 9:16 crop rectangles spread over the clip, at random horizontal places."""
    height = clip["height"]
    width = height * 9 / 16
    times = [clip["duration"] * i / max(1, count - 1) for i in range(count)]
    return [
        {
            "time": round(t, 3),
            "x": round(rng.uniform(0, clip["width"] - width), 2),
            "y": 0,
            "width": width,
            "height": height,
        }
        for t in times
    ]


# --- Load ------------------------------------------------------------------------------


@dataclass
class Sample:
    latencies_ms: list
    elapsed_s: float
    cpu_s: float
    store_cpu_s: float

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s


def run_phase(server: Server, users: list[User], phase: str, seconds: float, args) -> Sample:
    """Every user in its own thread, back-to-back requests, for ``seconds``."""
    barrier = threading.Barrier(len(users) + 1)
    results: list[list[float]] = [[] for _ in users]
    errors: list[str] = []
    last_end = [0.0]
    lock = threading.Lock()

    def worker(index: int, user: User) -> None:
        rng = random.Random(index)
        barrier.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            if phase == "list":
                method, path, body = "GET", "/api/projects", None
            else:
                method = "PATCH"
                path = f"/api/projects/{user.project_id}/clips/{user.clip['id']}"
                body = {"crop_keyframes": keyframes(user.clip, args.keyframes, rng)}
            started = time.perf_counter()
            response = user.request(method, path, json=body)
            ended = time.perf_counter()
            ok = response.status_code == 200
            if ok and phase == "list":
                ok = len(response.json()["projects"]) == args.projects
            if ok and server.name == "per-user" and method != "GET":
                ok = response.headers.get("X-Sync-Status") == "ok"
            if not ok:
                with lock:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                return
            results[index].append((ended - started) * 1000)
            with lock:
                last_end[0] = max(last_end[0], ended)

    threads = [threading.Thread(target=worker, args=(i, u)) for i, u in enumerate(users)]
    for thread in threads:
        thread.start()
    cpu_before = server.cpu()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    cpu_after = server.cpu()
    if errors:
        raise SystemExit(f"{server.name} {phase}: {len(errors)} failed requests: {errors[:3]}")
    latencies = [ms for per_user in results for ms in per_user]
    return Sample(
        latencies,
        last_end[0] - started,
        cpu_after[0] - cpu_before[0],
        cpu_after[1] - cpu_before[1],
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def prepare(server: Server, args, clip_bytes: bytes, users: dict) -> None:
    """Migrate, create the users, start daphne, sign everyone in and make their data."""
    steps = [time.monotonic()]
    script = _MIGRATE_AND_CREATE_USERS.format(n=args.users, password=PASSWORD)
    server.manage("shell", "-c", script)
    steps.append(time.monotonic())
    server.start()
    steps.append(time.monotonic())
    signed_in = [User(server, f"bench{i}") for i in range(args.users)]
    failures = []

    def set_up(user):
        try:
            set_up_user(user, args.projects, args.clips, clip_bytes)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=set_up, args=(user,)) for user in signed_in]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        print(f"{server.name}: setup failed: {failures[0]!r}", file=sys.stderr)
        return
    check_isolation(server.name, signed_in)
    steps.append(time.monotonic())
    took = [f"{b - a:.0f}" for a, b in itertools.pairwise(steps)]
    print(
        f"{server.name}: migrate and users {took[0]} s, daphne start {took[1]} s, "
        f"sign-in and data {took[2]} s",
        file=sys.stderr,
    )
    users[server.name] = signed_in


# --- Orchestration ---------------------------------------------------------------------


def make_clip(workdir: Path) -> bytes:
    sys.path.insert(0, str(ROOT))
    from projects.synthetic import write_game_clip

    path = workdir / "game.mp4"
    write_game_clip(path, **CLIP)
    return path.read_bytes()


def store_env(args, name: str, workdir: Path, moto_url: str | None) -> dict:
    if args.store == "local":
        return {"SNAPSHOT_LOCAL_DIR": str(workdir / "snapshots")}
    import boto3

    bucket = f"bench-{name}"
    boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    return {
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": moto_url,
        "S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def admin_sql(*statements: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def committed_snapshots(database: str) -> int:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}") as conn:
        row = conn.execute("SELECT coalesce(sum(version), 0) FROM syncstore_syncstate").fetchone()
    return int(row[0])


def summarize(samples: dict, rounds: int, servers: dict) -> None:
    print()
    print(
        "| endpoint | design | p50 ms | p95 ms | requests/s | CPU ms/request daphne"
        " | CPU ms/request moto | requests |"
    )
    print("|---|---|---|---|---|---|---|---|")
    pooled = {}
    for phase in PHASES:
        for config in CONFIGS:
            runs = samples[phase, config]
            latencies = [ms for s in runs for ms in s.latencies_ms]
            rps = sum(len(s.latencies_ms) for s in runs) / sum(s.elapsed_s for s in runs)
            cpu = sum(s.cpu_s for s in runs) * 1000 / len(latencies)
            store_cpu = sum(s.store_cpu_s for s in runs) * 1000 / len(latencies)
            store = f"{store_cpu:.1f}" if servers[config].store_pid else "-"
            pooled[phase, config] = (
                percentile(latencies, 0.5),
                percentile(latencies, 0.95),
                rps,
                cpu,
            )
            p50, p95, _, _ = pooled[phase, config]
            print(
                f"| {phase} | {config} | {p50:.1f} | {p95:.1f} | {rps:.0f} | {cpu:.1f} | {store} "
                f"| {len(latencies)} |"
            )
    print()
    print(
        "| endpoint | p50 per-user/central | p95 per-user/central | requests/s per-user/central"
        " | daphne CPU/request per-user/central |"
    )
    print("|---|---|---|---|---|")
    for phase in PHASES:
        a, b = pooled[phase, "per-user"], pooled[phase, "central"]
        pairs = list(zip(samples[phase, "per-user"], samples[phase, "central"], strict=True))

        def spread(fn, pairs=pairs):
            ratios = [fn(x) / fn(y) for x, y in pairs]
            return f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""

        p50_range = spread(lambda s: percentile(s.latencies_ms, 0.5))
        p95_range = spread(lambda s: percentile(s.latencies_ms, 0.95))
        rps_range = spread(lambda s: s.rps)
        cpu_range = spread(lambda s: s.cpu_s / len(s.latencies_ms))
        print(
            f"| {phase} | {a[0] / b[0]:.2f}{p50_range} | {a[1] / b[1]:.2f}{p95_range} | "
            f"{a[2] / b[2]:.2f}{rps_range} | {a[3] / b[3]:.2f}{cpu_range} |"
        )
    print(f"\n(ratios: pooled over {rounds} rounds; in brackets the range of the per-round ratios)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="concurrent signed-in users")
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase, per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--store", choices=("moto", "local"), default="moto")
    parser.add_argument("--projects", type=int, default=10, help="projects per user")
    parser.add_argument("--clips", type=int, default=1, help="clips per user (one a project)")
    parser.add_argument("--keyframes", type=int, default=8, help="crop keyframes per autosave")
    parser.add_argument("--keep", action="store_true", help="keep the data folders and logs")
    args = parser.parse_args()
    if not 1 <= args.clips <= args.projects:
        parser.error("--clips must be between 1 and --projects")

    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-central-vs-peruser-"))
    tag = f"reeleditor_bench_{os.getpid()}"
    databases = {config: f"{tag}_{config.replace('-', '')}" for config in CONFIGS}
    moto = None
    servers: dict[str, Server] = {}
    users: dict[str, list[User]] = {}
    admin_sql(*(f"CREATE DATABASE {db}" for db in databases.values()))
    try:
        moto_url = None
        if args.store == "moto":
            moto = MotoServer(workdir).start(timeout=START_TIMEOUT)
            moto_url = moto.url
        settings = {"per-user": "reeleditor.settings", "central": "bench.central_settings"}
        for config in CONFIGS:
            (workdir / config).mkdir()
            servers[config] = Server(
                name=config,
                settings=settings[config],
                database=databases[config],
                workdir=workdir / config,
                store_env=store_env(args, config.replace("-", ""), workdir / config, moto_url),
                store_pid=moto.pid if moto and config == "per-user" else None,
            )
        clip_bytes = make_clip(workdir)
        setup = [
            threading.Thread(target=prepare, args=(server, args, clip_bytes, users))
            for server in servers.values()
        ]
        for thread in setup:
            thread.start()
        for thread in setup:
            thread.join()
        if set(users) != set(CONFIGS):
            raise SystemExit("setup failed (see above)")
        print(
            f"{args.users} users x {args.projects} projects ({args.clips} with a clip), "
            f"{args.keyframes} keyframes per autosave, store: {args.store}, "
            f"set up in {time.monotonic() - began:.0f} s"
        )
        for config in CONFIGS:  # warm up both (first connections, imports, caches)
            for phase in PHASES:
                run_phase(servers[config], users[config], phase, 1.0, args)
        samples = {(phase, config): [] for phase in PHASES for config in CONFIGS}
        for round_no in range(args.rounds):
            order = CONFIGS if round_no % 2 == 0 else CONFIGS[::-1]
            line = []
            for phase in PHASES:
                for config in order:
                    sample = run_phase(servers[config], users[config], phase, args.seconds, args)
                    samples[phase, config].append(sample)
                    line.append(
                        f"{phase}/{config} p50 {percentile(sample.latencies_ms, 0.5):.1f} "
                        f"p95 {percentile(sample.latencies_ms, 0.95):.1f} {sample.rps:.0f}/s"
                    )
            load = os.getloadavg()[0]
            print(f"round {round_no + 1} (load {load:.1f}): " + "; ".join(line))
        summarize(samples, args.rounds, servers)
        autosaves = sum(len(s.latencies_ms) for s in samples["autosave", "per-user"])
        print(
            f"per-user: {committed_snapshots(databases['per-user'])} snapshots committed in all "
            f"(setup, warm-up and {autosaves} measured autosaves, each X-Sync-Status: ok)"
        )
        print(f"whole run: {time.monotonic() - began:.0f} s")
    finally:
        for server in servers.values():
            stop(server.process)
        if moto is not None:
            moto.stop()
        with contextlib.suppress(psycopg.Error):
            admin_sql(*(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)" for db in databases.values()))
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
