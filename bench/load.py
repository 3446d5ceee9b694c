"""Many users on one machine: locust against 1, 2 and 4 web processes, side by side.

    .venv/bin/python bench/load.py               # 20, 50 users x 1, 2, 4 processes x 2 loads
    .venv/bin/python bench/load.py --users 20 50 100 --processes 1 2 4 --seconds 60 \
        --think session none
    .venv/bin/python bench/load.py --target cluster --users 20 --processes 1 2
    .venv/bin/python bench/load.py --json out.json --keep

``--target embedded`` (the default): for each number of web processes, a fresh app in
its embedded default (SQLite central
database, local-folder store, in-process export workers with ``EXPORT_MODE=mock``, so
an export costs a short low-resolution render) served by ``python -m reeleditor.serve
--processes N``, in production settings (``DJANGO_DEBUG=false``). For each number of
users, locust (``bench/locustfile.py``, its own process, ``--headless``) signs them in,
gives each a project with a small clip, then runs their sessions for ``--seconds``:
keyframe autosaves every few seconds, the projects list, the project page, now and then
an export watched until it is done; with ``--think none`` the same without the pauses
(a closed loop: the most the machine serves, the figure the process ratio is about).
Statistics are reset once every user has started, so sign-in and set-up are not in the
figures; an autosave that does not answer ``X-Sync-Status: ok`` counts as a failure.
``--target cluster``: the same against the local cluster (``make cluster``'s two web
instances behind nginx, PostgreSQL, Redis, moto, a Celery worker), ``--processes`` per
instance.

After each embedded run, **acknowledged but lost**: every user's last autosave answered
``X-Sync-Status: ok`` (the locustfile's ledger) is looked for in what was committed,
read by the cluster suite's audit (``reeleditor/tests/cluster/audit.py``) in
``manage.py shell`` on an empty data folder (so from the snapshot store, as any other
machine would see it). The committed keyframes must be that autosave's, or one
sent after it whose answer said otherwise (it may have committed all the same); any
other value counts as lost.

Printed: requests per second, failures, lost, and p50 / p95 / p99 per endpoint for every
(processes, users) pair, then throughput with N processes over 1 process, per number
of users, from the same run. The load generator shares the machine with the app (as
users' browsers would not), so the absolute figures are a floor.
"""

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reeleditor.localcluster.cluster import clean_environment  # noqa: E402
from reeleditor.localcluster.processes import free_port  # noqa: E402

PASSWORD = "load-pw-1"
PREFIX = "load"
ENDPOINTS = ("autosave", "projects list", "project page", "export start", "export state")

_MAKE_USERS = """
import os
from django.contrib.auth import get_user_model
User = get_user_model()
prototype = User(username="prototype")
prototype.set_password(os.environ["LOAD_PASSWORD"])  # hashed once: the same for all
User.objects.bulk_create(
    User(username=f"{os.environ['LOAD_USERS_PREFIX']}{n}", password=prototype.password)
    for n in range(1, int(os.environ["LOAD_USER_COUNT"]) + 1)
)
"""


def app_env(workdir: Path) -> dict[str, str]:
    env = clean_environment()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
            "REELEDITOR_DATA_DIR": str(workdir / "data"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-load-" + "x" * 40,
            "SECURE_COOKIES": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "EXPORT_MODE": "mock",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def make_clip(workdir: Path) -> Path:
    from projects.synthetic import write_game_clip

    path = workdir / "clip.mp4"
    write_game_clip(path, width=320, height=180, fps=30, seconds=2.0)
    return path


def count_lost(ledger: Path, committed: dict) -> tuple[int, int]:
    """(users checked, users whose committed keyframes are no answer they could get)."""
    checked = lost = 0
    for line in ledger.read_text().splitlines() if ledger.exists() else []:
        entry = json.loads(line)
        if entry["acknowledged"] is None:
            continue  # nothing acknowledged: nothing to lose
        checked += 1
        have = committed.get(entry["user"], {}).get(str(entry["clip"]))
        lost += have not in [entry["acknowledged"], *entry["unconfirmed"]]
    return checked, lost


class App:
    """A fresh embedded-mode app served by ``reeleditor.serve --processes N``."""

    def __init__(self, workdir: Path, processes: int, users: int):
        self.workdir, self.processes = workdir, processes
        self.env = app_env(workdir)
        self.port = free_port()
        self.process = None
        manage(self.env, "migrate", "--noinput")
        manage({**self.env, "LOAD_PASSWORD": PASSWORD, "LOAD_USERS_PREFIX": PREFIX,
                "LOAD_USER_COUNT": str(users)}, "shell", "-c", _MAKE_USERS)  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.workdir / "serve.log", "ab")  # noqa: SIM115 (lives with the process)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reeleditor.serve", "--bind", f"127.0.0.1:{self.port}",
             "--processes", str(self.processes)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit(f"the app did not start: see {self.workdir / 'serve.log'}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def committed(self) -> dict:
        """Every load user's clips' keyframes as committed: the cluster suite's audit
        (users named ``load...``, as ``PREFIX`` makes them), run on an empty data folder
        with the same central database and snapshot store, after the app stopped."""
        from reeleditor.tests.cluster import audit

        data = self.workdir / "data"
        env = {
            **self.env,
            "REELEDITOR_DATA_DIR": str(self.workdir / "auditor"),
            "DATABASE_URL": f"sqlite:///{data / 'central.sqlite3'}",
            "SNAPSHOT_LOCAL_DIR": str(data / "snapshots"),
        }
        command = [sys.executable, "manage.py", "shell", "-c", audit.AUDIT]
        out = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        return {
            name: {str(clip["id"]): clip["keyframes"] for clip in user["clips"]}
            for name, user in audit.parse(out.stdout)["users"].items()
        }


class ClusterApp:
    """The local cluster ``make cluster`` starts (two web instances behind nginx, each
    with ``processes`` daphne processes; PostgreSQL, Redis, moto, a Celery worker) on
    free ports, with mock exports."""

    def __init__(self, workdir: Path, processes: int, users: int):
        from reeleditor.localcluster.__main__ import recreate_database
        from reeleditor.localcluster.cluster import LocalCluster, Ports

        self.processes = processes
        env = {"EXPORT_MODE": "mock", "LOAD_PASSWORD": PASSWORD, "LOAD_USERS_PREFIX": PREFIX,
               "LOAD_USER_COUNT": str(users)}  # fmt: skip
        self.cluster = LocalCluster(
            workdir / "cluster",
            recreate_database("reeleditor_bench_load"),
            ports=Ports.free(),
            extra_env=env,
            web_processes=processes,
        )

    @property
    def url(self) -> str:
        return self.cluster.url

    def start(self) -> None:
        self.cluster.start(progress=lambda step: None)
        self.cluster.manage("shell", "-c", _MAKE_USERS)

    def stop(self) -> None:
        self.cluster.stop()

    committed = None  # the cluster suite (pytest -m cluster) audits the cluster


def run_locust(app: App, users: int, think: str, seconds: int, clip: Path, out: Path) -> dict:
    prefix = out / f"p{app.processes}-u{users}-{think}"  # one run per folder
    env = {**os.environ, "LOAD_PASSWORD": PASSWORD, "LOAD_CLIP": str(clip),
           "LOAD_USERS_PREFIX": PREFIX, "LOAD_THINK": think,
           "LOAD_LEDGER": str(out / "ledger.jsonl")}  # fmt: skip
    spawn_rate = max(5, users // 5)
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"),
        "--headless", "--host", app.url, "-u", str(users), "-r", str(spawn_rate),
        "--run-time", f"{seconds + users // spawn_rate + 5}s", "--reset-stats",
        "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    with open(out / f"{prefix.name}.log", "wb") as log:
        subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return read_stats(Path(f"{prefix}_stats.csv"))


def read_stats(path: Path) -> dict:
    rows = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            name = row["Name"]
            if name.startswith("setup:"):
                continue
            rows[name] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50": float(row["50%"] or 0),
                "p95": float(row["95%"] or 0),
                "p99": float(row["99%"] or 0),
            }
    measured = [r for name, r in rows.items() if name != "Aggregated"]
    rows["all"] = {
        "requests": sum(r["requests"] for r in measured),
        "failures": sum(r["failures"] for r in measured),
        "rps": sum(r["rps"] for r in measured),
    }
    return rows


TARGETS = {
    "embedded": ("embedded default", App),
    "cluster": ("local cluster, 2 instances; processes per instance", ClusterApp),
}


def report(results: list[dict], processes: list[int], users: list[int]) -> None:
    for target, think in dict.fromkeys((r["target"], r["think"]) for r in results):
        print(f"\n## {TARGETS[target][0]}: think time {think} (locust on the same machine)\n")
        rows = [r for r in results if (r["target"], r["think"]) == (target, think)]
        table(rows, processes, users)


def table(results: list[dict], processes: list[int], users: list[int]) -> None:
    print("| processes | users | req/s | failures | lost (users checked) | " + " | ".join(
        f"{name} p50 / p95 / p99 ms" for name in ENDPOINTS) + " |")  # fmt: skip
    print("|---|---|---|---|---|" + "---|" * len(ENDPOINTS))
    for r in results:
        stats = r["stats"]
        cells = []
        for name in ENDPOINTS:
            s = stats.get(name)
            cells.append(f"{s['p50']:.0f} / {s['p95']:.0f} / {s['p99']:.0f}" if s else "-")
        lost = "-" if r.get("lost") is None else f"{r['lost']} ({r['checked']})"
        print(f"| {r['processes']} | {r['users']} | {stats['all']['rps']:.1f} | "
              f"{stats['all']['failures']} | {lost} | " + " | ".join(cells) + " |")  # fmt: skip
    base = min(processes)
    print(f"\nThroughput (req/s) with N processes over {base}, per number of users:\n")
    print("| users | " + " | ".join(f"{p} processes" for p in processes) + " |")
    print("|---|" + "---|" * len(processes))
    by = {(r["processes"], r["users"]): r["stats"]["all"]["rps"] for r in results}
    for u in users:
        cells = [f"{by[(p, u)] / by[(base, u)]:.2f}" if by.get((base, u)) else "-"
                 for p in processes]  # fmt: skip
        print(f"| {u} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=int, default=45)
    parser.add_argument("--think", nargs="+", default=["session", "none"],
                        choices=["session", "none"])  # fmt: skip
    parser.add_argument("--target", nargs="+", default=["embedded"], choices=list(TARGETS),
                        help="cluster: needs PostgreSQL, Redis and nginx")  # fmt: skip
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    started = time.monotonic()
    results = []
    try:
        clip = make_clip(workdir)
        runs = [
            (target, think, processes, users)
            for target in args.target
            for think in args.think
            for users in args.users
            for processes in args.processes  # N processes next to 1, for the ratio
        ]
        for target, think, processes, users in runs:
            run_dir = workdir / f"{target}-p{processes}-u{users}-{think}"
            run_dir.mkdir()
            app = TARGETS[target][1](run_dir, processes, users)
            try:
                app.start()
                print(f"{time.monotonic() - started:5.0f} s  {target}: {processes} processes, "
                      f"{users} users, think {think}", flush=True)  # fmt: skip
                stats = run_locust(app, users, think, args.seconds, clip, run_dir)
            finally:
                app.stop()
            checked = lost = None
            if app.committed is not None:
                checked, lost = count_lost(run_dir / "ledger.jsonl", app.committed())
            results.append({"target": target, "think": think, "processes": processes,
                            "users": users, "stats": stats, "checked": checked,
                            "lost": lost})  # fmt: skip
        report(results, args.processes, args.users)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        print(f"\n(took {time.monotonic() - started:.0f} s; work folder {workdir})")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
