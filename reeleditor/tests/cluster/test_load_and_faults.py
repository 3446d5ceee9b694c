"""Production mode under load and faults: 20 users on the local cluster while the store
is cut, the worker dies mid-export, a web instance dies mid-write and Redis restarts.

The cluster is what ``make cluster`` starts (PostgreSQL, Redis, moto, two daphne
instances behind nginx, one Celery worker). Twenty simulated users (``load.py``) work
through the entry point for ``LOAD_SECONDS``, and the faults come one after the other
meanwhile. Then the exports are drained, and an auditor that never saw these users
reads what is committed (``audit.py``). The suite counts:

* acknowledged but lost: a write answered ``X-Sync-Status: ok`` whose data is not
  committed (a project or clip missing, an autosave older than the last one
  acknowledged);
* wrong answers: a write refused (409/503) whose data is committed anyway, a "failed"
  (kept, retried) write that never made it, a 500;
* exports: any job not ended (pending or processing: stuck), ``complete`` without its
  video row and stored file, two video rows for one job (a duplicate).

All must be 0. The figures go to ``test-artifacts/cluster-load.json`` and, from a
run, into docs/reliability.md.
"""

import json
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg

from projects.synthetic import write_game_clip

from .audit import AUDIT, parse
from .load import CLIP_HEIGHT, CLIP_WIDTH, Ledger, SimulatedUser, Target, seq_of

USERS = 20
PASSWORD = "pw-load-coach-3"
LOAD_SECONDS = 80
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


# --- Faults ---------------------------------------------------------------------------


class Faults:
    """The faults of the run, in order, each recorded with when it happened."""

    def __init__(self, cluster, ledger, started: float):
        self.cluster = cluster
        self.ledger = ledger
        self.started = started
        self.log: list[dict] = []
        self.moments: dict[str, float] = {}

    def _record(self, fault: str, **details) -> None:
        self.moments[fault] = time.monotonic()
        self.log.append(
            {"fault": fault, "at_s": round(time.monotonic() - self.started, 1), **details}
        )

    def jobs_processing(self) -> int:
        with psycopg.connect(self.cluster.database_url, autocommit=True) as conn:
            return conn.execute(
                "SELECT count(*) FROM exports_exportjob WHERE status = 'processing'"
            ).fetchone()[0]

    def kill_worker_mid_export(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.jobs_processing() == 0:
            if time.monotonic() > deadline:
                raise AssertionError("no export was processing to kill the worker under")
            time.sleep(0.2)
        processing = self.jobs_processing()
        self.cluster.worker.kill()
        self._record("worker killed (SIGKILL to its process group)", jobs_processing=processing)
        time.sleep(3)
        self.cluster.worker.start(timeout=120)
        self._record("worker restarted")

    def cut_store(self, seconds: float = 10.0) -> None:
        self.cluster.s3.pause()
        self._record("store cut (S3 endpoint frozen with SIGSTOP)", seconds=seconds)
        time.sleep(seconds)
        self.cluster.s3.resume()
        self._record("store back")

    def kill_web_mid_write(self, timeout: float = 60.0) -> None:
        web = self.cluster.web[0]
        deadline = time.monotonic() + timeout
        # Several writes in flight through the entry point: some are on web1.
        while self.ledger.writes_in_flight < 3:
            if time.monotonic() > deadline:
                raise AssertionError("no writes were in flight to kill web1 under")
            time.sleep(0.02)
        in_flight = self.ledger.writes_in_flight
        web.kill()
        self._record("web1 killed (SIGKILL)", writes_in_flight=in_flight)
        time.sleep(3)
        web.start()
        self._record("web1 restarted")

    def restart_redis(self) -> None:
        self.cluster.redis.stop()
        self._record("redis stopped")
        time.sleep(2)
        self.cluster.redis.start()
        self._record("redis restarted")


def inject(faults: Faults, stop: threading.Event, errors: list) -> None:
    try:
        time.sleep(6)
        faults.kill_worker_mid_export()
        time.sleep(5)
        faults.cut_store()
        time.sleep(8)
        faults.kill_web_mid_write()
        time.sleep(8)
        faults.restart_redis()
    except BaseException as exc:  # reported by the test, not lost in a thread
        errors.append(exc)


# --- Checks -----------------------------------------------------------------------------


NOT_SAVED = (409, 503)


def check_writes(writes: list[dict], audit: dict) -> dict:
    lost, wrong = [], []
    committed_autosave = {}
    for name, data in audit["users"].items():
        for clip in data["clips"]:
            committed_autosave[(name, str(clip["id"]))] = seq_of(clip["keyframes"])
    last_ok: dict = {}
    for entry in writes:
        user, op, status, sync = entry["user"], entry["op"], entry["status"], entry["sync"]
        data = audit["users"][user]
        if status is not None and status >= 500 and status not in (502, 503, 504):
            wrong.append({**entry, "why": "server error"})
            continue
        if op == "autosave":
            committed = committed_autosave.get((user, entry["key"]))
            if status == 200 and sync == "ok":
                last_ok[(user, entry["key"])] = max(
                    last_ok.get((user, entry["key"]), 0), entry["seq"]
                )
            elif status == 200 and sync == "failed":
                if committed is None or committed < entry["seq"]:
                    wrong.append(
                        {
                            **entry,
                            "why": "kept and retried, yet not committed",
                            "committed": committed,
                        }
                    )
            elif status in NOT_SAVED and committed == entry["seq"]:
                wrong.append({**entry, "why": "said not saved, yet committed"})
            continue
        present = (
            entry["key"] in data["projects"]
            if op == "create"
            else any(c["name"] == entry["key"] and c["stored"] for c in data["clips"])
        )
        if status == 201 and sync == "ok" and not present:
            lost.append(entry)
        elif status == 201 and sync == "failed" and not present:
            wrong.append({**entry, "why": "kept and retried, yet not committed"})
        elif status in NOT_SAVED and present:
            wrong.append({**entry, "why": "said not saved, yet committed"})
    for (user, clip_id), seq in last_ok.items():
        committed = committed_autosave.get((user, clip_id))
        if committed is None or committed < seq:
            lost.append(
                {"user": user, "op": "autosave", "acknowledged": seq, "committed": committed}
            )
    return {"lost": lost, "wrong": wrong}


def check_exports(audit: dict) -> dict:
    stuck = [job for job in audit["jobs"] if job["status"] in ("pending", "processing")]
    videos_by_job = Counter()
    stored = {}
    for data in audit["users"].values():
        for video in data["videos"]:
            videos_by_job[video["job"]] += 1
            stored[video["job"]] = video["stored"]
    complete = [job for job in audit["jobs"] if job["status"] == "complete"]
    without_video = [job for job in complete if not stored.get(job["id"])]
    duplicates = [job for job, n in videos_by_job.items() if n > 1]
    return {
        "stuck": stuck,
        "complete_without_video": without_video,
        "duplicate_videos": duplicates,
        "complete": len(complete),
    }


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 1),
    }


# --- The suite -----------------------------------------------------------------------------


def wait_for_quiet_copies(cluster, users, timeout: float = 90.0) -> None:
    """Until no web instance holds a copy with writes it has not committed."""
    deadline = time.monotonic() + timeout
    pending = {(u.name, w.name) for u in users for w in cluster.web}
    while pending and time.monotonic() < deadline:
        for user in users:
            for web in cluster.web:
                if (user.name, web.name) not in pending:
                    continue
                answer = user.client.on(Target(f"http://127.0.0.1:{web.port}", web.name)).get(
                    "/api/sync/status"
                )
                if answer.status == 200 and not answer.json["dirty"]:
                    pending.discard((user.name, web.name))
        time.sleep(1)
    assert not pending, f"copies still dirty after {timeout}s: {sorted(pending)[:10]}"


def test_twenty_users_through_store_cut_worker_kill_web_kill_and_redis_restart(cluster, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_game_clip(clip, width=CLIP_WIDTH, height=CLIP_HEIGHT, fps=10, seconds=1.0)
    names = [f"load{i:02d}" for i in range(USERS)]
    create = (
        "from django.contrib.auth import get_user_model\n"
        f"for name in {names!r}:\n"
        f"    get_user_model().objects.create_user(name, password={PASSWORD!r})\n"
    )
    cluster.manage("shell", "-c", create)
    ledger = Ledger()
    users = [
        SimulatedUser(n, PASSWORD, cluster.url, ledger, clip, seed=i) for i, n in enumerate(names)
    ]
    for user in users:
        user.set_up()

    stop = threading.Event()
    started = time.monotonic()
    faults = Faults(cluster, ledger, started)
    fault_errors: list = []
    threads = [threading.Thread(target=u.run, args=(stop,), daemon=True) for u in users]
    for thread in threads:
        thread.start()
    injector = threading.Thread(target=inject, args=(faults, stop, fault_errors), daemon=True)
    injector.start()
    injector.join(LOAD_SECONDS + 120)
    remaining = LOAD_SECONDS - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)
    stop.set()
    for thread in threads:
        thread.join(60)
    load_seconds = time.monotonic() - started
    assert not fault_errors, fault_errors
    # Drain: every export's watcher ends (complete, or a failure it may not retry).
    for user in users:
        for watcher in user.watchers:
            watcher.join(240)
    wait_for_quiet_copies(cluster, users)

    audit = parse(cluster.manage("shell", "-c", AUDIT).stdout)
    writes = check_writes(ledger.writes, audit)
    exports = check_exports(audit)
    redis_back = next(f["at_s"] for f in faults.log if f["fault"] == "redis restarted")
    progress_after_redis = sum(
        1
        for record in ledger.exports
        for at, status, _ in record["messages"]
        if at - started > redis_back and status == "processing"
    )
    figures = {
        "users": USERS,
        "load_seconds": round(load_seconds, 1),
        "requests": sum(len(s) for s in ledger.latency.values()),
        "writes": len(ledger.writes),
        "write_answers": dict(
            Counter(f"{w['op']} {w['status']} {w['sync']}" for w in ledger.writes)
        ),
        "exports": len(ledger.exports),
        "export_outcomes": dict(Counter(r["outcome"] for r in ledger.exports)),
        "export_retries": sum(r["retries"] for r in ledger.exports),
        "websocket_reconnects": sum(r["reconnects"] for r in ledger.exports),
        "export_starts_refused_or_unanswered": ledger.events["export start refused or unanswered"],
        "progress_messages_after_redis_restart": progress_after_redis,
        "jobs": dict(
            Counter(
                j["status"] + (f" {j['error_code']}" if j["error_code"] else "")
                for j in audit["jobs"]
            )
        ),
        "faults": faults.log,
        "latency": {endpoint: percentiles(s) for endpoint, s in sorted(ledger.latency.items())},
        "statuses": dict(sorted(ledger.statuses.items())),
        "requests_per_instance": requests_per_instance(cluster),
        "requests_held_by_the_store_cut": held_by_the_cut(ledger, faults),
        "acknowledged_but_lost": len(writes["lost"]),
        "wrong_answers": len(writes["wrong"]),
        "exports_stuck": len(exports["stuck"]),
        "exports_complete_without_video": len(exports["complete_without_video"]),
        "duplicate_videos": len(exports["duplicate_videos"]),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "cluster-load.json").write_text(json.dumps(figures, indent=2))
    details = json.dumps({"writes": writes, "exports": exports}, indent=1)[:6000]
    assert writes["lost"] == [], details
    assert writes["wrong"] == [], details
    assert exports["stuck"] == [] and exports["complete_without_video"] == [], details
    assert exports["duplicate_videos"] == [], details
    # The load and the faults really happened.
    assert exports["complete"] >= USERS, figures["jobs"]
    assert figures["write_answers"].get("autosave 200 ok", 0) > 100, figures["write_answers"]
    assert figures["requests_held_by_the_store_cut"] > 0, "no request waited on the cut store"
    assert progress_after_redis > 0, "no export progressed after Redis came back"
    assert all(n > 0 for n in figures["requests_per_instance"].values()), figures


def held_by_the_cut(ledger, faults) -> int:
    """Requests in flight while the store was cut that waited on it: answered 503 or
    "failed", or held for longer than a store read may take (SNAPSHOT_READ_TIMEOUT).
    Which of these a request meets depends on when it came: a push that outlasts the
    cut by retrying succeeds, one that runs out of tries first says so."""
    cut = faults.moments["store cut (S3 endpoint frozen with SIGSTOP)"]
    back = faults.moments["store back"]
    return sum(
        1
        for started, ended, _, status in ledger.timeline
        if started < back and ended > cut and (status == 503 or ended - max(started, cut) >= 2)
    )


def requests_per_instance(cluster) -> dict:
    """Requests the entry point sent to each web instance (from its access log)."""
    counts = Counter()
    names = {f"127.0.0.1:{web.port}": web.name for web in cluster.web}
    for line in (cluster.workdir / "nginx-access.log").read_text().splitlines():
        for address, name in names.items():
            if f"upstream={address}" in line:
                counts[name] += 1
    return {web.name: counts[web.name] for web in cluster.web}
