"""A working copy *ahead* of the registry: its base version is newer than the committed one.

How it happens: the central database is restored from a backup older than the store, an
operator deletes a registry row, or a data folder outlives a reset central database. The
registry then says version 0 (or an older version) while the copy says N.

The copy holds the newest data anyone has: it must never be replaced by an older (or
empty) version, and a write must still get an honest answer, not a crash.
"""

import pytest

from projects.models import Project
from projects.tests.helpers import create_project, post_json
from syncstore import keys, sync, workingcopy
from syncstore.binding import bound_to_user
from syncstore.models import SyncState
from syncstore.tests.helpers import project_names

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry_lost(local_store, alice, alice_client):
    """Alice has committed versions 1 and 2; then her registry row disappears."""
    create_project(alice_client, "a")
    create_project(alice_client, "b")
    SyncState.objects.filter(user=alice).delete()
    assert workingcopy.read_state(alice.pk).base_version == 2


def test_reads_keep_serving_a_copy_ahead_of_the_registry(registry_lost, alice, alice_client):
    response = alice_client.get("/api/projects")
    assert response.status_code == 200
    assert sorted(p["name"] for p in response.json()["projects"]) == ["a", "b"]


def test_a_write_on_a_copy_ahead_of_the_registry_gets_an_honest_answer(
    registry_lost, alice, alice_client
):
    response = post_json(alice_client, "/api/projects", {"name": "c", "aspect_ratio": "9:16"})

    assert response.status_code == 201
    assert response["X-Sync-Status"] in ("failed", "conflict")
    # Nothing is replaced by an older or empty version: the newest data stays in use.
    assert project_names(alice) == ["a", "b", "c"]
    assert workingcopy.read_state(alice.pk).dirty


def test_one_broken_copy_does_not_stop_the_retry_of_the_others(
    registry_lost, alice, bob, bob_client, local_store, settings
):
    settings.SYNC_PUSH_BACKOFF = []
    blocker = local_store.root / keys.snapshot_prefix(bob.pk).rstrip("/")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"")  # bob's uploads fail for now
    create_project(bob_client, "bob's")
    assert SyncState.objects.get(user=bob).status == "failed"
    blocker.unlink()
    with bound_to_user(alice.pk):
        Project.objects.create(name="c", aspect_ratio="9:16")  # alice dirty, ahead
    assert workingcopy.dirty_user_ids() == sorted([alice.pk, bob.pk])
    assert alice.pk < bob.pk  # alice's copy comes first in the pass

    results = {r.user_id: r for r in sync.retry_dirty_copies()}

    assert (results[bob.pk].status, results[bob.pk].version) == ("ok", 1)
    assert results[alice.pk].status != "ok"
    assert project_names(alice) == ["a", "b", "c"]
