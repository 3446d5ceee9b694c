"""Several web processes on one machine: one port, one data folder (reeleditor.serve).

The write lease (a file lock, then the claim in the central database) and the copy lock
serialise writers across processes; these tests prove it from outside. Three users
write from several threads at once, each request on a new connection so the kernel
spreads them over both processes; one process is killed mid-load and comes back. Every
acknowledged write must be in the committed data, read by an instance on an empty data
folder, and both processes must have served writes for the same users.
"""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import CENTRAL_DATABASES

PASSWORD = "pw-two-processes-3"
USERS = ("ana", "ben", "cai")
THREADS_PER_USER = 3
WRITES_PER_THREAD = 12


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def api_lines(log) -> int:
    return sum("/api/projects" in line for line in log.read_text().splitlines())


@pytest.mark.parametrize("central_database", CENTRAL_DATABASES, indirect=True)
def test_two_processes_on_one_data_folder_lose_no_acknowledged_write(app_instances):
    web = app_instances("web", start=False, processes=2)
    web.launch()
    app_instances.create_users(*[(name, PASSWORD) for name in USERS])
    web.wait_until_up()
    clients = {name: web.client(name, PASSWORD) for name in USERS}
    acknowledged, answers, lock = [], [], threading.Lock()

    def writer(name: str, thread: int) -> None:
        for i in range(WRITES_PER_THREAD):
            project = f"{name}-{thread}-{i}"
            try:
                # A new connection each time: keep-alive would pin a thread to a process.
                response = clients[name].post(
                    "/api/projects",
                    {"name": project, "aspect_ratio": "9:16"},
                    headers={"Connection": "close"},
                )
                answer = (response.status, response.sync)
            except requests.RequestException:
                answer = (None, None)  # its process was killed with the request in flight
            with lock:
                answers.append(answer)
                if answer == (201, "ok"):
                    acknowledged.append((name, project))

    with ThreadPoolExecutor(len(USERS) * THREADS_PER_USER) as pool:
        futures = [
            pool.submit(writer, name, thread)
            for name in USERS
            for thread in range(THREADS_PER_USER)
        ]
        time.sleep(1.5)
        victim = children_of(web.pid)[0]
        os.kill(victim, signal.SIGKILL)
        for future in futures:
            future.result()

    # The supervisor started the killed process again.
    deadline = time.monotonic() + 30
    while len(children_of(web.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(children_of(web.pid)) == 2 and victim not in children_of(web.pid)

    logs = sorted((web.workdir / "access").glob("web-*.access.log"))
    assert [api_lines(log) > 0 for log in logs] == [True, True], "both processes served"
    statuses = {status for status, _ in answers}
    assert statuses <= {201, 503, None}, answers  # 503: a lease or copy wait ran out
    assert len(acknowledged) >= len(USERS) * THREADS_PER_USER * WRITES_PER_THREAD // 2

    auditor = app_instances("auditor")  # an empty data folder: reads what is committed
    for name in USERS:
        response = auditor.client(name, PASSWORD).get("/api/projects")
        assert response.status == 200
        committed = {project["name"] for project in response.json["projects"]}
        mine = {project for owner, project in acknowledged if owner == name}
        assert mine <= committed, f"{name}: acknowledged but lost: {sorted(mine - committed)}"
