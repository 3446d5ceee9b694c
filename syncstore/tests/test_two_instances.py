"""Two app instances: two data folders, one central database, one snapshot store.

Instance A is this test process (Django's test client); instance B is a real separate
process (``instance.py``) with its own data folder, configured through the environment
the way a second machine would be, and pointed at this test's central database file
and moto bucket. Both serve the same user in turn: every write is committed as the next
version, and each instance sees the other's committed writes on its very next read.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from projects.tests.helpers import post_json
from syncstore import operations, workingcopy
from syncstore.models import SyncState
from syncstore.tests.helpers import LineProcess, registry, snapshot_names

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_SCRIPT = Path(__file__).with_name("instance.py")
ANSWER_TIMEOUT = 60


class Instance(LineProcess):
    """A running ``instance.py``: send it one command, get its one-line JSON answer."""

    def __init__(self, env, log_path):
        super().__init__(
            [sys.executable, str(INSTANCE_SCRIPT)], env=env, cwd=ROOT, log_path=log_path
        )

    def __call__(self, command):
        self.send(command)
        line = self.next_line(ANSWER_TIMEOUT)
        assert line is not None, f"instance B gave no answer to {command!r}:\n{self.log()}"
        answer = json.loads(line)
        assert "error" not in answer, f"{command!r}: {answer['error']}\n{self.log()}"
        return answer

    def stop(self):
        try:
            if self.process.poll() is None:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            self._log.close()


@pytest.fixture
def instance_b(transactional_db, s3_store, settings, central_database_url, tmp_path):
    data_dir = tmp_path / "instance-b"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
        "REELEDITOR_DATA_DIR": str(data_dir),
        "DATABASE_URL": central_database_url,
        "S3_BUCKET": settings.S3_BUCKET,
        "S3_ENDPOINT_URL": settings.S3_ENDPOINT_URL,
        "S3_REGION": settings.S3_REGION,
        "ALLOWED_HOSTS": "testserver",
        "SYNC_RETRY_INTERVAL": "0",
        "LOG_LEVEL": "WARNING",
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env.get(name), f"{name} is not set (the moto fixture sets it)"
    for name in ("DJANGO_DEBUG", "SNAPSHOT_PREFIX", "SNAPSHOT_LOCAL_DIR", "REDIS_URL"):
        env.pop(name, None)  # the same store, file leases, development settings
    instance = Instance(env, tmp_path / "instance-b.log")
    instance.data_dir = data_dir
    try:
        yield instance
    finally:
        instance.stop()


def names(projects_json):
    """Project names in the order they were created.

    Sorted here because ``GET /api/projects`` has no defined order (see
    ``test_the_projects_list_is_newest_first``).
    """
    projects = sorted(projects_json["projects"], key=lambda p: (p["created_at"], p["id"]))
    return [p["name"] for p in projects]


def create_on_a(client, name):
    response = post_json(client, "/api/projects", {"name": name, "aspect_ratio": "9:16"})
    assert response.status_code == 201, response.content
    assert response["X-Sync-Status"] == "ok"
    return response.json()


def create_on_b(instance, user, name):
    answer = instance(f"create {user.pk} {name}")
    assert answer["status"] == 201, answer
    assert answer["sync"] == "ok", answer
    return answer["body"]


def list_on_a(client):
    response = client.get("/api/projects")
    assert response.status_code == 200
    assert response["X-Sync-Status"] == "ok"
    return names(response.json())


def list_on_b(instance, user):
    answer = instance(f"list {user.pk}")
    assert answer["status"] == 200, answer
    assert answer["sync"] == "ok", answer
    return names(answer["body"])


def no_conflict_copies(user, instance):
    assert operations.conflict_copies(user.pk) == []  # A's folder and the store
    assert not (instance.data_dir / "users" / str(user.pk) / "conflicts").exists()


def test_alternating_writes_on_two_instances_lose_nothing(
    alice, alice_client, instance_b, tmp_path
):
    expected = []  # in the order they were made
    ids = []
    for round_ in range(3):
        ids.append(create_on_a(alice_client, f"A{round_}")["id"])
        expected.append(f"A{round_}")
        assert registry(alice).version == 2 * round_ + 1
        assert list_on_b(instance_b, alice) == expected  # B sees A's write at once

        ids.append(create_on_b(instance_b, alice, f"B{round_}")["id"])
        expected.append(f"B{round_}")
        assert registry(alice).version == 2 * round_ + 2
        assert list_on_a(alice_client) == expected  # and A sees B's

    assert expected == ["A0", "B0", "A1", "B1", "A2", "B2"]
    assert ids == sorted(set(ids))  # each write went onto the other's latest copy
    assert list_on_a(alice_client) == expected
    assert list_on_b(instance_b, alice) == expected

    row = registry(alice)
    assert (row.version, row.status, row.last_error) == (6, "ok", "")
    assert row.object_key.startswith(f"snapshots/{alice.pk}/0000000006-")
    assert snapshot_names(row, tmp_path) == expected
    state_a = workingcopy.read_state(alice.pk)
    assert (state_a.base_version, state_a.dirty) == (6, False)
    state_b = instance_b(f"state {alice.pk}")
    assert (state_b["base_version"], state_b["dirty"]) == (6, False)
    assert instance_b(f"status {alice.pk}")["body"]["version"] == 6
    no_conflict_copies(alice, instance_b)


def test_a_copy_left_behind_pulls_on_its_next_read_without_a_conflict_copy(
    s3_store, alice, alice_client, instance_b, data_dir
):
    create_on_a(alice_client, "first")
    create_on_b(instance_b, alice, "second")
    # A is behind now, and B writes again while it is.
    assert workingcopy.read_state(alice.pk).base_version == 1
    create_on_b(instance_b, alice, "third")
    assert registry(alice).version == 3
    assert workingcopy.read_state(alice.pk).base_version == 1  # nothing pushed to A

    calls = []
    s3_store.client.meta.events.register(
        "before-call.s3", lambda **kw: calls.append(kw["model"].name)
    )
    assert list_on_a(alice_client) == ["first", "second", "third"]

    # A holds version 1 exactly: it downloads the two segments after it, nothing else.
    assert calls == ["GetObject", "GetObject"]
    state = workingcopy.read_state(alice.pk)
    assert (state.base_version, state.dirty) == (3, False)
    assert registry(alice).status == "ok"
    no_conflict_copies(alice, instance_b)

    # A's next write goes on top of B's, as version 4, seen by B.
    create_on_a(alice_client, "fourth")
    assert registry(alice).version == 4
    assert list_on_b(instance_b, alice) == ["first", "second", "third", "fourth"]
    no_conflict_copies(alice, instance_b)


def test_a_user_new_to_an_instance_is_restored_there_not_created_empty(
    alice, bob, alice_client, instance_b
):
    create_on_a(alice_client, "made on A")
    assert not (instance_b.data_dir / "users" / str(alice.pk)).exists()

    assert list_on_b(instance_b, alice) == ["made on A"]
    state_b = instance_b(f"state {alice.pk}")
    assert (state_b["base_version"], state_b["dirty"]) == (1, False)

    # A user nobody has written for yet starts empty, at version 0, on B too.
    status = instance_b(f"status {bob.pk}")
    assert status["sync"] == "ok"
    assert (status["body"]["version"], status["body"]["dirty"]) == (0, False)
    assert list_on_b(instance_b, bob) == []
    assert not SyncState.objects.filter(user=bob).exists()


def test_the_projects_list_is_newest_first(alice, alice_client):
    create_on_a(alice_client, "older")
    create_on_a(alice_client, "newer")
    listed = [p["name"] for p in alice_client.get("/api/projects").json()["projects"]]
    assert listed == ["newer", "older"]
