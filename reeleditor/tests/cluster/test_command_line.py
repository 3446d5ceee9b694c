"""``make cluster`` / ``make cluster-down``: the command line starts every service in
the background, with the demo user, and stops them all again."""

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from syncstore.tests.faults import postgres

ROOT = Path(__file__).resolve().parents[3]


def localcluster(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "reeleditor.localcluster", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_starts_everything_with_the_demo_user_and_down_stops_it(tmp_path):
    database = f"reeleditor_cluster_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    workdir = tmp_path / "cluster"
    options = ["--dir", str(workdir), "--database", database, "--free-ports"]
    try:
        started = localcluster("up", *options)
        assert started.returncode == 0, started.stdout + started.stderr
        state = json.loads((workdir / "cluster.json").read_text())
        assert set(state["pids"]) == {"redis", "s3", "web1", "web2", "worker", "entry"}
        assert localcluster("status", *options).returncode == 0

        # The demo user signs in through the entry point and sees the demo project.
        session = requests.Session()
        login = state["url"] + "/accounts/login/"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', session.get(login).text)
        signed_in = session.post(
            login,
            data={"csrfmiddlewaretoken": token[1], "username": "demo", "password": "demo"},
            headers={"Referer": login},
            allow_redirects=False,
        )
        assert signed_in.status_code == 302
        projects = session.get(state["url"] + "/api/projects").json()["projects"]
        assert [p["name"] for p in projects] == ["Demo: Saturday match"]
        ready = session.get(state["url"] + "/readyz").json()
        assert ready["status"] == "ready", ready

        stopped = localcluster("down", *options)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not [name for name, pid in state["pids"].items() if alive(pid)]
        assert localcluster("status", *options).returncode == 1
    finally:
        localcluster("down", *options)
        postgres.drop_database(database)
