"""Smoke test of the fault harness: two real app processes on one central database
(SQLite and PostgreSQL) and one bucket behind the fault proxy.

It checks the harness, not the sync semantics (the fault suite does that): the
instances share users, sessions and data, a cut store shows in the answers, and a
SIGKILLed instance comes back on its data folder.
"""

import pytest
import requests

from .conftest import CENTRAL_DATABASES

PASSWORD = "pw-coach-7f3a"


@pytest.mark.fault
@pytest.mark.parametrize("central_database", CENTRAL_DATABASES, indirect=True)
def test_two_instances_share_data_and_survive_cuts_and_kills(app_instances, s3_fault_proxy):
    proxy = s3_fault_proxy
    a, b = app_instances.many("a", "b", users=[("coach", PASSWORD)])
    assert a.data_dir != b.data_dir and a.database_url == b.database_url
    assert app_instances.user_ids["coach"] >= 1
    on_a = a.client("coach", PASSWORD)
    on_b = b.client("coach", PASSWORD)

    created = on_a.post("/api/projects", {"name": "State final", "aspect_ratio": "9:16"})
    assert created.status == 201, created
    assert created.sync == "ok", created
    assert proxy.counts("snapshots/").forwarded >= 1
    assert proxy.list_keys("snapshots/"), "the write's snapshot is in the bucket"

    status, headers, body = on_b.get("/api/projects")
    assert status == 200, body
    assert headers["X-Sync-Status"] == "ok"
    assert [project["name"] for project in body["projects"]] == ["State final"]

    # The store is cut for snapshots: the write cannot be made durable, and says so.
    proxy.cut("snapshots/")
    during = on_a.post("/api/projects", {"name": "During the outage", "aspect_ratio": "16:9"})
    assert during.status >= 500 or during.sync != "ok", during
    assert proxy.counts("snapshots/").cut >= 1
    proxy.heal()

    # B dies without a word, and comes back on the same data folder and port.
    b.kill()
    assert not b.alive
    with pytest.raises(requests.ConnectionError):
        on_b.get("/api/projects", timeout=2)
    b.restart()
    assert b.starts == 2
    again = on_b.get("/api/projects")
    assert again.status == 200, again
    assert "State final" in [project["name"] for project in again.json["projects"]]
