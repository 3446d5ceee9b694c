"""Saved means saved, proven from outside: two real app processes (separate data
folders) on one central database (SQLite and PostgreSQL), one bucket behind fault
proxies, concurrent writes, a store cut for one machine only, and SIGKILL at chosen
points of a push.

Every write is a project created (or deleted) with a unique name, and every answer is
kept in a ledger. At the end a third instance on an empty data folder reads what is
committed, and the conflict copies in the bucket are opened. The suite counts:

* acknowledged but lost: answered 201/204 with ``X-Sync-Status: ok`` and not committed;
* wrong answers: an answer that does not match what happened to its write (a 409 or a
  503 whose write is committed anyway, a "failed" write that is neither committed nor
  kept in a conflict copy, a deleted project that comes back);

both must be 0. The figures are written to ``test-artifacts/fault-suite-<db>.json``
and summarised in docs/reliability.md.
"""

import json
import os
import signal
import sqlite3
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from projects.synthetic import write_game_clip

from .conftest import CENTRAL_DATABASES
from .s3proxy import S3FaultProxy

PASSWORD = "pw-coach-fault-7"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
THREADS_PER_INSTANCE = 4
WRITES_PER_THREAD = 20


class Ledger:
    """Every write sent and how it was answered."""

    def __init__(self):
        self.entries = []
        self._lock = threading.Lock()
        self.faults = Counter()

    def create(self, client, name, phase):
        body = None
        try:
            response = client.post("/api/projects", {"name": name, "aspect_ratio": "9:16"})
            answer = (response.status, response.sync)
            body = response.json if response.status >= 400 else None  # why, when refused
        except requests.RequestException:
            answer = (None, None)  # no answer: the process died or the request timed out
        with self._lock:
            self.entries.append(
                {"op": "create", "name": name, "phase": phase, "answer": answer, "body": body}
            )
        return answer

    def upload_clip(self, client, project_id, clip_path, name, phase):
        with open(clip_path, "rb") as handle:
            try:
                response = client.post(
                    f"/api/projects/{project_id}/clips", files={"file": (name, handle)}
                )
                answer = (response.status, response.sync)
            except requests.RequestException:
                response, answer = None, (None, None)
        with self._lock:
            self.entries.append({"op": "clip", "name": name, "phase": phase, "answer": answer})
        return response

    def delete_clip(self, client, project_id, clip, phase):
        try:
            response = client.delete(f"/api/projects/{project_id}/clips/{clip['id']}")
            answer = (response.status, response.sync)
        except requests.RequestException:
            answer = (None, None)
        with self._lock:
            self.entries.append(
                {"op": "delete-clip", "name": clip["name"], "phase": phase, "answer": answer}
            )
        return answer

    def delete(self, client, name, project_id, phase):
        try:
            response = client.delete(f"/api/projects/{project_id}")
            answer = (response.status, response.sync)
        except requests.RequestException:
            answer = (None, None)
        with self._lock:
            self.entries.append({"op": "delete", "name": name, "phase": phase, "answer": answer})
        return answer


def burst(ledger, clients, phase, writes_per_thread=WRITES_PER_THREAD):
    """Concurrent creations: THREADS_PER_INSTANCE threads on each client."""

    def run(client, thread):
        for i in range(writes_per_thread):
            ledger.create(client, f"{phase}-{client.instance.name}-{thread}-{i}", phase)

    with ThreadPoolExecutor(len(clients) * THREADS_PER_INSTANCE) as pool:
        jobs = [
            pool.submit(run, client, thread)
            for client in clients
            for thread in range(THREADS_PER_INSTANCE)
        ]
        for job in jobs:
            job.result()


def clip_media(client, listing) -> dict:
    """Every committed clip's name -> whether its media file can be fetched (follows the
    redirect to the presigned S3 URL)."""
    found = {}
    for project in listing:
        if not project["clip_count"]:
            continue
        for clip in client.get(f"/api/projects/{project['id']}").json["clips"]:
            response = client.get(clip["url"], headers={"Range": "bytes=0-15"})
            if response.status in (301, 302):
                response = requests.get(response.headers["Location"], timeout=10)
                found[clip["name"]] = response.status_code == 200
            else:
                found[clip["name"]] = response.status in (200, 206)
    return found


def wait_until_stopped(pid, timeout=30.0):
    """Until the process is in state T (stopped by a signal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not stop")


def conflict_copy_names(moto_client, bucket, user_id) -> set[str]:
    """Project names held in the user's conflict copies in the bucket."""
    names = set()
    listing = moto_client.list_objects_v2(Bucket=bucket, Prefix=f"conflicts/{user_id}/")
    for item in listing.get("Contents", ()):
        body = moto_client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "copy.sqlite3"
            path.write_bytes(zlib.decompress(body))
            conn = sqlite3.connect(path)
            try:
                names.update(row[0] for row in conn.execute("SELECT name FROM projects_project"))
            finally:
                conn.close()
    return names


def check(ledger, committed: set[str], kept: set[str], clips: dict) -> dict:
    """``clips``: committed clip name -> whether its media file could be fetched."""
    lost, wrong = [], []
    deleted_ok = {
        entry["name"]
        for entry in ledger.entries
        if entry["op"] in ("delete", "delete-clip") and entry["answer"] == (204, "ok")
    }
    lost += [{"op": "clip", "name": n, "media": "missing"} for n, ok in clips.items() if not ok]
    for entry in ledger.entries:
        status, sync = entry["answer"]
        name = entry["name"]
        if entry["op"] in ("delete", "delete-clip") or name in deleted_ok:
            continue
        if entry["op"] == "clip":
            committed_here = name in clips
            if (status, sync) == (201, "ok") and not committed_here:
                lost.append(entry)
            elif status in (409, 503) and committed_here:
                wrong.append(entry)
            continue
        if status == 201 and sync == "ok":
            if name not in committed:
                lost.append(entry)
        elif status == 201 and sync == "failed":
            # Kept on that machine and retried: committed, or kept as a conflict copy.
            if name not in committed and name not in kept:
                wrong.append(entry)
        elif status in (409, 503):
            if name in committed:
                wrong.append(entry)  # said "not saved", yet saved
        elif status is None:
            pass  # no answer (killed): either outcome is honest
        else:
            wrong.append(entry)
    back = deleted_ok & (committed | set(clips))
    wrong += [{"op": "delete", "name": n, "came_back": True} for n in back]
    return {"lost": lost, "wrong": wrong}


@pytest.mark.fault
@pytest.mark.parametrize("central_database", CENTRAL_DATABASES, indirect=True)
def test_saved_means_saved_under_concurrency_outages_and_kills(
    app_instances, s3_fault_proxy, moto_endpoint, moto_client, central_database, request, tmp_path
):
    proxy_a = s3_fault_proxy
    # Machine B reaches the same bucket through its own proxy: a cut can hit one only.
    proxy_b = S3FaultProxy(moto_endpoint).start()
    proxy_b.bucket = proxy_a.bucket
    request.addfinalizer(proxy_b.stop)
    [a] = app_instances.many("a", users=[("coach", PASSWORD)], proxy=proxy_a)
    b = app_instances("b", proxy=proxy_b)
    user_id = app_instances.user_ids["coach"]
    on_a, on_b = a.client("coach", PASSWORD), b.client("coach", PASSWORD)
    ledger = Ledger()

    # 1. Both machines write for one user at once: one writer at a time, fenced.
    burst(ledger, [on_a, on_b], "concurrent")

    # Clips: real uploads to media storage, one project on B.
    clip_path = tmp_path / "clip.mp4"
    write_game_clip(clip_path, width=160, height=90, fps=10, seconds=1.0)
    reel = on_b.post("/api/projects", {"name": "reel", "aspect_ratio": "9:16"}).json
    clips = [
        ledger.upload_clip(on_b, reel["id"], clip_path, f"clip-{i}.mp4", "clips").json
        for i in range(4)
    ]

    # 2. Machine A loses the store for snapshots (media still work); B keeps writing.
    # A deletes a clip it cannot commit the deletion of; B deletes another and commits.
    assert on_a.get(f"/api/projects/{reel['id']}").status == 200  # A is up to date
    proxy_a.cut("snapshots/")
    ledger.delete_clip(on_a, reel["id"], clips[0], "partial-outage")
    ledger.delete_clip(on_b, reel["id"], clips[1], "partial-outage")
    ledger.upload_clip(on_a, reel["id"], clip_path, "clip-during-outage.mp4", "partial-outage")
    burst(ledger, [on_a, on_b], "partial-outage", writes_per_thread=4)
    ledger.faults["snapshot requests cut"] += proxy_a.counts("snapshots/").cut
    proxy_a.heal()
    on_a.post("/api/sync/retry")  # A's kept writes: committed, or kept as conflict copies

    # 3. Deletions of committed projects on B.
    listed = on_b.get("/api/projects").json["projects"]
    for project in listed[:5]:
        ledger.delete(on_b, project["name"], project["id"], "delete")

    # 4. SIGKILL at chosen points of a push, then the same machine comes back.
    for point in ("before_upload", "after_upload", "after_commit"):
        a.terminate()
        a.env["SYNC_CRASH_POINT"] = point
        a.start()
        ledger.create(on_a, f"crash-{point}", "crash")
        ledger.faults[f"killed at {point}"] += 1
        a.env.pop("SYNC_CRASH_POINT")
        a.restart(kill=True)
        after = ledger.create(on_a, f"after-crash-{point}", "after-crash")
        assert after == (201, "ok"), f"the first write after a crash at {point}: {after}"

    # 5. Machine A freezes mid-push (SIGSTOP) past its lease's ttl; B takes the lease
    # over and commits; A wakes up and must not commit over it.
    a.terminate()
    a.env.update({"SYNC_CRASH_POINT": "stop_after_upload", "LEASE_TTL_SECONDS": "2"})
    a.start()
    paused = threading.Thread(target=ledger.create, args=(on_a, "paused-writer", "lease-lost"))
    paused.start()
    wait_until_stopped(a.pid)
    time.sleep(3)  # longer than the ttl: the claim expires
    taken_over = ledger.create(on_b, "while-a-was-frozen", "lease-lost")
    assert taken_over == (201, "ok"), (taken_over, ledger.entries[-1]["body"], b.log_tail())
    os.kill(a.pid, signal.SIGCONT)
    paused.join(60)
    ledger.faults["leases lost (SIGSTOP past the ttl)"] += 1
    frozen = next(e for e in ledger.entries if e["name"] == "paused-writer")
    assert frozen["answer"] == (409, "conflict"), frozen
    for name in ("SYNC_CRASH_POINT", "LEASE_TTL_SECONDS"):
        a.env.pop(name)
    a.restart()

    # 6. The status heals once the faults are gone.
    on_a.post("/api/sync/retry")
    on_b.post("/api/sync/retry")
    assert on_a.sync_status()["dirty"] is False
    assert on_b.sync_status()["dirty"] is False

    # What is committed, read by a machine that never saw this user.
    c = app_instances("c", proxy=proxy_b)
    on_c = c.client("coach", PASSWORD)
    listing = on_c.get("/api/projects").json["projects"]
    committed = {project["name"] for project in listing}
    committed_clips = clip_media(on_c, listing)
    kept = conflict_copy_names(moto_client, proxy_a.bucket, user_id)
    outcome = check(ledger, committed, kept, committed_clips)
    answers = Counter(f"{e['op']} {e['answer'][0]} {e['answer'][1]}" for e in ledger.entries)
    figures = {
        "central_database": request.node.callspec.params["central_database"],
        "writes": len(ledger.entries),
        "answers": dict(answers),
        "faults_injected": dict(ledger.faults),
        "committed_projects": len(committed),
        "committed_clips": len(committed_clips),
        "committed_clips_without_media": sum(not ok for ok in committed_clips.values()),
        "conflict_copy_projects": len(kept),
        "acknowledged_but_lost": len(outcome["lost"]),
        "wrong_answers": len(outcome["wrong"]),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"fault-suite-{figures['central_database']}.json").write_text(
        json.dumps(figures, indent=2)
    )
    assert outcome["lost"] == [], figures
    assert outcome["wrong"] == [], figures
    assert figures["committed_clips"] >= 2 and figures["committed_clips_without_media"] == 0
    # The fault really happened and the machines really wrote concurrently.
    assert figures["faults_injected"]["snapshot requests cut"] > 0
    assert answers["create 201 ok"] >= 2 * THREADS_PER_INSTANCE * WRITES_PER_THREAD // 2
