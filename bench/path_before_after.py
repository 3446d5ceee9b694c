"""One user's request path before and after a change, as ratios measured in one run.

    .venv/bin/python bench/path_before_after.py [--baseline 1ffcb24] [--requests 150]
        [--rounds 3] [--json out.json]
    .venv/bin/python bench/path_before_after.py --central postgres \
        --baseline-env DATABASE_POOL=false          # this tree with and without a setting

Two apps run side by side: this tree and a baseline revision of this repository
(default 1ffcb24, the last commit before issue 14's request-path work), checked out into
a temporary worktree. Each is its embedded default in production settings
(``DJANGO_DEBUG=false``, SQLite central database, local-folder store) served by
``python -m reeleditor.serve --processes 1`` on its own port and data folder. One
signed-in user per app with a project and a small clip, then, in turns (so both sides
see the same machine load), batches of:

* ``projects list``: ``GET /api/projects``;
* ``project page``: ``GET /projects/<id>/``;
* ``autosave``: ``PATCH`` of the clip's crop keyframes, answered ``X-Sync-Status: ok``;
* ``rename``: ``PATCH`` of the project's name.

Sent one at a time over one kept-alive connection, as one person's browser does.
Printed per kind: p50 / p95 / p99 in ms and the server's CPU time per request (user +
system of the serving processes, from ``/proc``), for both sides, and this tree over the
baseline. Ratios below 1 mean this tree is faster.

``--central postgres`` gives each side a throwaway PostgreSQL database
(``reeleditor_bench_path_*`` on ``TEST_POSTGRES_URL``'s server, dropped at the end) as
its central database instead of SQLite, as production runs. ``--baseline-env NAME=VALUE`` (repeated)
makes the baseline this same tree with those settings, to measure one setting.
"""

import argparse
import json
import os
import re
import signal
import statistics
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

DEFAULT_BASELINE = "1ffcb24"
PASSWORD = "path-pw-1"
KINDS = ("projects list", "project page", "autosave", "rename")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Side:
    """One tree's app, its user, and the samples measured against it."""

    def __init__(self, name: str, tree: Path, workdir: Path, extra_env: dict | None = None):
        self.name, self.tree, self.workdir = name, tree, workdir
        self.port = free_port()
        self.env = clean_environment()
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
            "REELEDITOR_DATA_DIR": str(workdir / "data"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-path-" + "x" * 40,
            "SECURE_COOKIES": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        self.env.update(extra_env or {})
        self.process = None
        self.samples = {kind: [] for kind in KINDS}
        self.cpu = {kind: 0.0 for kind in KINDS}  # seconds of server CPU per kind

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, extra: dict | None = None) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=self.tree,
                       env={**self.env, **(extra or {})}, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip

    def start(self) -> None:
        self.manage("migrate", "--noinput")
        make_user = (
            "from django.contrib.auth import get_user_model; import os; "
            "get_user_model().objects.create_user('coach', password=os.environ['PW'])"
        )
        self.manage("shell", "-c", make_user, extra={"PW": PASSWORD})
        log = open(self.workdir / "serve.log", "ab")  # noqa: SIM115 (lives with the process)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reeleditor.serve", "--bind", f"127.0.0.1:{self.port}",
             "--processes", "1"],
            cwd=self.tree, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit(f"{self.name} did not start: see {self.workdir / 'serve.log'}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def cpu_seconds(self) -> float:
        """User + system time of the supervisor and its daphne children."""
        total = 0.0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        return total


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


class Browser:
    """One signed-in person: a kept-alive session, a project and a clip."""

    def __init__(self, side: Side, clip: Path):
        self.http = requests.Session()
        self.base = side.url
        page = self.http.get(self.base + "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        signed = self.http.post(
            self.base + "/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": "coach", "password": PASSWORD},
            headers={"Referer": self.base + "/accounts/login/"},
            allow_redirects=False,
        )
        assert signed.status_code == 302, f"sign-in failed on {side.name}"
        project = self._send("post", "/api/projects", json={"name": "p", "aspect_ratio": "9:16"})
        self.project_url = f"/api/projects/{project['id']}"
        self.page_url = f"/projects/{project['id']}/"
        with clip.open("rb") as handle:
            made = self._send("post", self.project_url + "/clips",
                              files={"file": ("game.mp4", handle, "video/mp4")})  # fmt: skip
        self.clip_url = f"{self.project_url}/clips/{made['id']}"
        self.count = 0

    def _send(self, method: str, path: str, **kwargs):
        headers = {"X-CSRFToken": self.http.cookies.get("csrftoken", "")}
        response = self.http.request(method, self.base + path, headers=headers, **kwargs)
        response.raise_for_status()
        if method != "get":
            assert response.headers.get("X-Sync-Status") == "ok", (path, response.headers)
        return response.json() if "json" in response.headers.get("Content-Type", "") else None

    def one(self, kind: str) -> None:
        self.count += 1
        if kind == "projects list":
            self._send("get", "/api/projects")
        elif kind == "project page":
            self._send("get", self.page_url)
        elif kind == "autosave":
            frames = [{"time": t / 2, "x": float((self.count + t) % 200), "y": 0.0,
                       "width": 101.25, "height": 180.0} for t in range(3)]  # fmt: skip
            self._send("patch", self.clip_url, json={"crop_keyframes": frames})
        else:
            self._send("patch", self.project_url, json={"name": f"p{self.count}"})


def batch(side: Side, browser: Browser, kind: str, count: int) -> None:
    for _ in range(5):  # warm the connection and the caches: not counted
        browser.one(kind)
    cpu_before = side.cpu_seconds()
    for _ in range(count):
        start = time.perf_counter()
        browser.one(kind)
        side.samples[kind].append((time.perf_counter() - start) * 1000)
    side.cpu[kind] += side.cpu_seconds() - cpu_before


def figures(side: Side) -> dict:
    out = {}
    for kind, samples in side.samples.items():
        cuts = statistics.quantiles(samples, n=100)
        out[kind] = {
            "p50": statistics.median(samples),
            "p95": cuts[94],
            "p99": cuts[98],
            "cpu_ms": side.cpu[kind] * 1000 / len(samples),
            "n": len(samples),
        }
    return out


def report(base: dict, ours: dict, baseline: str) -> None:
    print(f"\nbaseline {baseline} vs this tree, one user, through daphne (ms)")
    print(f"{'':14} {'':>10} {'p50':>7} {'p95':>7} {'p99':>7} {'CPU/req':>8}")
    for kind in KINDS:
        for label, result in (("baseline", base[kind]), ("this tree", ours[kind])):
            print(f"{kind:14} {label:>10} {result['p50']:7.1f} {result['p95']:7.1f} "
                  f"{result['p99']:7.1f} {result['cpu_ms']:8.1f}")  # fmt: skip
        ratio = {k: ours[kind][k] / base[kind][k] for k in ("p50", "p95", "p99", "cpu_ms")}
        print(f"{'':14} {'ratio':>10} {ratio['p50']:7.2f} {ratio['p95']:7.2f} "
              f"{ratio['p99']:7.2f} {ratio['cpu_ms']:8.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--requests", type=int, default=150, help="per kind per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--central", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--baseline-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-path-"))
    baseline_env = dict(item.split("=", 1) for item in args.baseline_env)
    if baseline_env:
        baseline_tree, args.baseline = ROOT, "this tree with " + " ".join(args.baseline_env)
    else:
        baseline_tree = workdir / "baseline-tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline_tree),
                        args.baseline], cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    sides, databases = [], []
    if args.central == "postgres":
        from syncstore.tests.faults import postgres

        reason = postgres.unavailable_reason()
        if reason:
            raise SystemExit(f"{reason} (or use --central sqlite)")
    try:
        from projects.synthetic import write_game_clip

        clip = workdir / "clip.mp4"
        write_game_clip(clip, width=320, height=180, fps=30, seconds=2.0)
        for name, tree, extra in (("baseline", baseline_tree, baseline_env),
                                  ("this tree", ROOT, {})):  # fmt: skip
            (workdir / name).mkdir()
            if args.central == "postgres":
                databases.append(postgres.fresh_database_url(prefix="reeleditor_bench_path"))
                extra = {**extra, "DATABASE_URL": databases[-1]}
            sides.append(Side(name, tree, workdir / name, extra))
            sides[-1].start()
        browsers = [Browser(side, clip) for side in sides]
        for round_number in range(args.rounds):
            for kind in KINDS:
                # Alternate which side goes first, so neither always follows the other.
                order = list(zip(sides, browsers, strict=True))
                if round_number % 2:
                    order.reverse()
                for side, browser in order:
                    batch(side, browser, kind, args.requests)
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for side in sides:
            side.stop()
        for url in databases:
            postgres.drop_database(url)
        if not baseline_env:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline_tree)],
                           cwd=ROOT, check=False)  # fmt: skip
    base, ours = figures(sides[0]), figures(sides[1])
    report(base, ours, args.baseline)
    if args.json:
        args.json.write_text(json.dumps({"baseline": base, "this tree": ours}, indent=2))


if __name__ == "__main__":
    main()
