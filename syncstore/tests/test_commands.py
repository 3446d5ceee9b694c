"""The ``resync`` and ``syncstatus`` management commands, on real stores (moto S3, a folder)."""

import json
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from projects.tests.helpers import create_project
from syncstore import leases, operations, sync, userdb, workingcopy
from syncstore.binding import bound_to_user
from syncstore.stores import get_store
from syncstore.tests.helpers import (
    another_machine_commits,
    new_machine,
    project_names,
    registry,
    write_without_push,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_backoff(settings):
    settings.SYNC_PUSH_BACKOFF = []  # an outage fails at once instead of after retries


@pytest.fixture
def carol(db, django_user_model):
    return django_user_model.objects.create_user(username="carol", password="pw-carol")


@dataclass
class Run:
    out: str
    err: str
    error: str = ""  # the CommandError message when the command exits with status 1


def run(command, *args, fails=False, **options):
    out, err = StringIO(), StringIO()
    if fails:
        with pytest.raises(CommandError) as info:
            call_command(command, *args, stdout=out, stderr=err, **options)
        return Run(out.getvalue(), err.getvalue(), str(info.value))
    call_command(command, *args, stdout=out, stderr=err, **options)
    return Run(out.getvalue(), err.getvalue())


# --- resync --push ------------------------------------------------------------------------


def test_push_commits_a_write_left_dirty_by_an_outage(
    s3_store, s3_outage, no_backoff, alice, alice_client, data_dir
):
    create_project(alice_client, "Before")
    with s3_outage():
        create_project(alice_client, "During")
    assert registry(alice).status == "failed"
    assert registry(alice).version == 1

    result = run("resync", "--user", "alice")

    assert result.out.splitlines() == [f"user {alice.pk} (alice): ok v2", "1 user: 1 ok."]
    assert "Pushing" in result.err
    assert "1/1" in result.err
    row = registry(alice)
    assert (row.version, row.status, row.last_error) == (2, "ok", "")
    assert workingcopy.read_state(alice.pk).dirty is False
    new_machine(data_dir)  # what the store holds, not the local file
    assert project_names(alice) == ["Before", "During"]


def test_push_during_an_outage_reports_the_failure_and_exits_1(
    s3_store, s3_outage, no_backoff, alice, alice_client
):
    create_project(alice_client, "Before")
    with s3_outage():
        create_project(alice_client, "During")
        result = run("resync", "--user", str(alice.pk), "--push", fails=True)

    assert f"user {alice.pk} (alice): failed: Could not save to the snapshot store" in result.out
    assert "1 user: 0 ok, 1 failed." in result.out
    assert result.error == "1 of 1 users failed or are in conflict."
    assert registry(alice).version == 1
    assert workingcopy.read_state(alice.pk).dirty is True  # kept for the next try


def test_all_pushes_every_dirty_copy(store, alice, bob, carol, alice_client):
    create_project(alice_client, "Committed")
    write_without_push(alice, "Alice offline")
    write_without_push(bob, "Bob offline")
    write_without_push(carol, "Carol offline")

    result = run("resync", "--all")

    assert result.out.splitlines() == [
        f"user {alice.pk} (alice): ok v2",
        f"user {bob.pk} (bob): ok v1",
        f"user {carol.pk} (carol): ok v1",
        "3 users: 3 ok.",
    ]
    assert "3/3" in result.err
    assert [registry(u).version for u in (alice, bob, carol)] == [2, 1, 1]
    assert workingcopy.dirty_user_ids() == []

    again = run("resync", "--all")  # nothing left to do: no new versions
    assert "3 users: 3 ok." in again.out
    assert [registry(u).version for u in (alice, bob, carol)] == [2, 1, 1]


def test_a_held_lease_fails_that_user_and_the_others_are_still_pushed(local_store, alice, bob):
    write_without_push(alice, "Alice offline")
    write_without_push(bob, "Bob offline")
    # Another writer (a request, an export) holds alice's lease.
    held = leases.Lease.acquire(alice.pk, wait=0, ttl=30)
    try:
        result = run("resync", "--all", "--wait", "0", fails=True)
    finally:
        held.release()

    assert f"user {alice.pk} (alice): failed: user {alice.pk}'s lease is held" in result.out
    assert f"user {bob.pk} (bob): ok v1" in result.out
    assert "2 users: 1 ok, 1 failed." in result.out
    assert registry(bob).version == 1
    assert workingcopy.read_state(alice.pk).dirty is True


def test_push_leaves_users_without_a_copy_on_this_machine_alone(
    store, alice, alice_client, data_dir
):
    create_project(alice_client, "Cup")
    new_machine(data_dir)

    for args in [("--all",), ("--all", "--push", "--force")]:
        result = run("resync", *args)
        assert f"user {alice.pk} (alice): ok v1 (no working copy on this machine)" in result.out
    assert not userdb.database_path(alice.pk).exists()  # nothing downloaded for nothing
    assert registry(alice).version == 1


def test_force_push_commits_a_copy_with_no_recorded_write(store, alice, alice_client):
    create_project(alice_client, "Cup")

    result = run("resync", "--user", "alice", "--force")

    assert f"user {alice.pk} (alice): ok v2" in result.out
    assert registry(alice).version == 2


def test_force_push_of_a_stale_copy_is_refused_as_a_conflict(store, alice, alice_client, tmp_path):
    create_project(alice_client, "Shared")
    another_machine_commits(alice, alice_client, tmp_path, "Newer")

    result = run("resync", "--user", "alice", "--push", "--force", fails=True)

    assert f"user {alice.pk} (alice): conflict: Your changes were based on version 1" in result.out
    assert registry(alice).version == 2  # forcing never overwrites committed work
    assert len(operations.conflict_copies(alice.pk)) == 1


# --- resync --pull ------------------------------------------------------------------------


def test_pull_brings_a_copy_behind_another_machine_up_to_date(store, alice, alice_client, tmp_path):
    create_project(alice_client, "Good")
    another_machine_commits(alice, alice_client, tmp_path, "Newer")
    assert workingcopy.read_state(alice.pk).base_version == 1

    result = run("resync", "--user", "alice", "--pull")

    assert result.out.splitlines() == [f"user {alice.pk} (alice): ok v2", "1 user: 1 ok."]
    assert "Pulling" in result.err
    assert workingcopy.read_state(alice.pk).base_version == 2
    assert project_names(alice) == ["Good", "Newer"]


def test_pull_on_a_new_machine_restores_every_user(store, alice, bob, alice_client, bob_client):
    create_project(alice_client, "A1")
    create_project(alice_client, "A2")
    create_project(bob_client, "B1")
    new_machine(userdb.users_dir().parent)

    result = run("resync", "--all", "--pull")

    assert f"user {alice.pk} (alice): ok v2" in result.out
    assert f"user {bob.pk} (bob): ok v1" in result.out
    assert project_names(alice) == ["A1", "A2"]
    assert project_names(bob) == ["B1"]


def test_pull_of_a_stale_copy_with_unpushed_writes_keeps_them_and_says_conflict(
    store, alice, alice_client, tmp_path
):
    create_project(alice_client, "Shared")
    another_machine_commits(alice, alice_client, tmp_path, "Newer")
    write_without_push(alice, "Unpushed")

    result = run("resync", "--user", "alice", "--pull", fails=True)

    assert (
        f"user {alice.pk} (alice): conflict: unpushed writes based on version 1 were kept "
        "as a conflict copy; the working copy now holds version 2"
    ) in result.out
    assert project_names(alice) == ["Newer", "Shared"]
    copies = operations.conflict_copies(alice.pk)
    assert len(copies) == 1
    operations.restore_conflict_copy(alice.pk, copies[0]["name"])
    assert project_names(alice) == ["Shared", "Unpushed"]  # nothing was lost


def test_force_pull_replaces_a_dirty_copy_and_keeps_a_conflict_copy(store, alice, alice_client):
    create_project(alice_client, "Committed")
    write_without_push(alice, "Unpushed")

    result = run("resync", "--user", "alice", "--pull", "--force")

    assert f"user {alice.pk} (alice): ok v1" in result.out
    assert project_names(alice) == ["Committed"]
    state = workingcopy.read_state(alice.pk)
    assert (state.base_version, state.dirty) == (1, False)
    copies = operations.conflict_copies(alice.pk)
    assert len(copies) == 1
    assert copies[0]["local"] and copies[0]["stored"]
    operations.restore_conflict_copy(alice.pk, copies[0]["name"])
    assert project_names(alice) == ["Committed", "Unpushed"]
    assert registry(alice).version == 2


def test_pull_when_the_store_is_down_fails_without_touching_the_copy(
    s3_store, s3_outage, alice, alice_client, tmp_path
):
    create_project(alice_client, "Good")
    another_machine_commits(alice, alice_client, tmp_path, "Newer")

    with s3_outage():
        result = run("resync", "--user", "alice", "--pull", fails=True)

    assert f"user {alice.pk} (alice): failed: the snapshot store is unreachable" in result.out
    assert workingcopy.read_state(alice.pk).base_version == 1
    assert project_names(alice) == ["Good"]


# --- resync --verify ----------------------------------------------------------------------


def test_verify_reports_sound_snapshots(store, alice, bob, alice_client, bob_client, carol):
    create_project(alice_client, "One")
    create_project(alice_client, "Two")
    create_project(bob_client, "Three")
    write_without_push(carol, "Never pushed")

    result = run("resync", "--all", "--verify")

    assert result.out.splitlines() == [
        f"user {alice.pk} (alice): ok v2 (snapshot verified)",
        f"user {bob.pk} (bob): ok v1 (snapshot verified)",
        f"user {carol.pk} (carol): ok v0 (nothing committed yet)",
        "3 users: 3 ok.",
    ]
    assert "Verifying" in result.err


def test_verify_reports_a_corrupt_and_a_missing_snapshot_and_exits_1(
    store, alice, bob, carol, alice_client, bob_client, tmp_path
):
    create_project(alice_client, "One")
    create_project(bob_client, "Two")
    carol_client = type(alice_client)()
    carol_client.force_login(carol)
    create_project(carol_client, "Three")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x78\x01" + b"not a snapshot" * 100)
    get_store().put_file(registry(alice).object_key, garbage)
    get_store().delete(registry(bob).object_key)

    result = run("resync", "--all", "--verify", fails=True)

    lines = result.out.splitlines()
    assert lines[0].startswith(
        f"user {alice.pk} (alice): failed: the snapshot for version 1 is corrupt"
    )
    assert lines[1] == (
        f"user {bob.pk} (bob): failed: the snapshot for version 1 is missing from the store"
    )
    assert lines[2] == f"user {carol.pk} (carol): ok v1 (snapshot verified)"
    assert lines[3] == "3 users: 1 ok, 2 failed."
    assert result.error == "2 of 3 users failed or are in conflict."
    assert registry(alice).version == 1  # verifying changes nothing


# --- resync: arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((), {}, "Say which users"),
        (("--push",), {}, "Say which users"),
        (("--user", "nobody"), {}, "No such user: 'nobody'"),
        (("--user", "99999"), {}, "No such user: '99999'"),
        (("--all", "--push", "--pull"), {}, "not allowed with argument"),
        (("--all", "--user", "alice"), {}, "not allowed with argument"),
        (("--all", "--verify", "--force"), {}, "--force goes with --push or --pull"),
        (("--all", "--wait", "-1"), {}, "--wait must be 0 or more"),
        ((), {"all": True, "push": True, "verify": True}, "Choose one action"),
        ((), {"all": True, "users": ["alice"]}, "either --user or --all"),
    ],
)
def test_resync_refuses_unclear_arguments(local_store, alice, args, options, message):
    write_without_push(alice, "Untouched")

    result = run("resync", *args, fails=True, **options)

    assert message in result.error
    assert registry(alice) is None  # nothing was pushed


def test_resync_accepts_ids_and_usernames_once_each(local_store, alice, bob):
    write_without_push(alice, "A")
    write_without_push(bob, "B")

    result = run("resync", "--user", str(bob.pk), "--user", "alice", "--user", "bob")

    assert result.out.splitlines() == [
        f"user {bob.pk} (bob): ok v1",
        f"user {alice.pk} (alice): ok v1",
        "2 users: 2 ok.",
    ]


def test_resync_with_no_known_users_says_so(local_store):
    assert run("resync", "--all").out == "No users to sync.\n"


def test_quiet_resync_draws_no_progress_bar(local_store, alice):
    write_without_push(alice, "A")
    result = run("resync", "--all", verbosity=0)
    assert result.err == ""
    assert f"user {alice.pk} (alice): ok v1" in result.out


# --- syncstatus ---------------------------------------------------------------------------


@pytest.fixture
def mixed_states(s3_store, s3_outage, no_backoff, alice, bob, carol, alice_client, bob_client):
    """alice: committed and clean; bob: a push failed in an outage; carol: unpushed writes."""
    create_project(alice_client, "A1")
    create_project(alice_client, "A2")
    create_project(bob_client, "B1")
    with s3_outage():
        create_project(bob_client, "B2")
    write_without_push(carol, "C1")
    return alice, bob, carol


def test_syncstatus_shows_a_table_of_users(mixed_states):
    alice, bob, carol = mixed_states

    lines = run("syncstatus").out.splitlines()

    assert lines[0].split() == [
        "id",
        "username",
        "version",
        "status",
        "dirty",
        "failures",
        "last",
        "error",
        "committed",
        "(UTC)",
    ]
    assert set(lines[1]) <= {"-", " "}
    rows = {line.split()[1]: line for line in lines[2:]}
    assert list(rows) == ["alice", "bob", "carol"]
    assert rows["alice"].split()[:7] == [str(alice.pk), "alice", "2", "ok", "no", "0", "-"]
    assert rows["bob"].split()[:7] == [
        str(bob.pk),
        "bob",
        "1",
        "failed",
        "yes",
        "1",
        "Could",
    ]
    assert "Could not save to the snapshot" in rows["bob"]
    assert "…" in rows["bob"]  # shortened
    assert rows["carol"].split() == [str(carol.pk), "carol", "0", "pending", "yes", "0", "-", "-"]


def test_syncstatus_json_is_complete_and_machine_readable(mixed_states):
    alice, _, _ = mixed_states

    data = json.loads(run("syncstatus", "--json").out)

    users = {entry["username"]: entry for entry in data["users"]}
    assert list(users) == ["alice", "bob", "carol"]
    assert users["alice"] | {"committed_at": None, "last_attempt_at": None, "object_key": ""} == {
        "user_id": alice.pk,
        "username": "alice",
        "version": 2,
        "status": "ok",
        "registry_status": "ok",
        "dirty": False,
        "dirty_since": None,
        "local_version": 2,
        "failure_count": 0,
        "last_error": "",
        "committed_at": None,
        "last_attempt_at": None,
        "size_bytes": registry(alice).size_bytes,
        "object_key": "",
    }
    assert users["alice"]["committed_at"] == registry(alice).committed_at.isoformat()
    assert users["alice"]["object_key"] == registry(alice).object_key
    assert users["bob"]["status"] == "failed"
    assert users["bob"]["dirty"] is True
    assert users["bob"]["last_error"].startswith("Could not save to the snapshot store")
    assert users["carol"]["status"] == "pending"
    assert users["carol"]["registry_status"] is None


def test_syncstatus_problems_lists_only_failed_conflicting_and_dirty_users(mixed_states):

    lines = run("syncstatus", "--problems").out.splitlines()
    assert [line.split()[1] for line in lines[2:]] == ["bob", "carol"]

    data = json.loads(run("syncstatus", "--problems", "--json").out)
    assert [entry["username"] for entry in data["users"]] == ["bob", "carol"]

    run("resync", "--all")
    assert run("syncstatus", "--problems").out == "No problems.\n"


def test_syncstatus_for_one_user(mixed_states):
    _, bob, _ = mixed_states

    data = json.loads(run("syncstatus", "--user", "bob", "--json").out)

    assert [entry["user_id"] for entry in data["users"]] == [bob.pk]
    assert "No such user" in run("syncstatus", "--user", "nobody", fails=True).error


def test_syncstatus_with_no_users(local_store):
    assert run("syncstatus").out == "No users known.\n"
    assert json.loads(run("syncstatus", "--json").out) == {"users": []}


# --- Findings in sync.py (strict xfails: they start failing, loudly, once fixed) -----------


def test_ensure_fresh_moving_unpushed_writes_aside_is_reported_as_a_conflict(
    local_store, alice, alice_client, tmp_path
):
    create_project(alice_client, "Shared")
    another_machine_commits(alice, alice_client, tmp_path, "Newer")
    write_without_push(alice, "Unpushed")

    with bound_to_user(alice.pk):
        sync.ensure_fresh(alice.pk)

    assert len(operations.conflict_copies(alice.pk)) == 1
    assert sync.status_of(alice.pk)["status"] == "conflict"


def test_a_recovered_read_failure_is_not_reported_as_failed_forever(
    s3_store, s3_outage, alice, alice_client, tmp_path
):
    create_project(alice_client, "Good")
    another_machine_commits(alice, alice_client, tmp_path, "Newer")
    with s3_outage():
        assert alice_client.get("/api/projects")["X-Sync-Status"] == "failed"

    response = alice_client.get("/api/projects")  # the store is back: this pulls version 2
    state = workingcopy.read_state(alice.pk)
    assert (state.base_version, state.dirty) == (2, False)

    assert response["X-Sync-Status"] == "ok"
    assert alice_client.post("/api/sync/retry").status_code == 200
    assert "ok v2" in run("resync", "--user", "alice", "--pull").out


def test_force_pull_of_a_user_whose_push_failed_does_not_report_failed(
    s3_store, s3_outage, no_backoff, alice, alice_client
):
    create_project(alice_client, "Committed")
    with s3_outage():
        create_project(alice_client, "Unpushed")

    result = operations.force_pull(alice.pk)

    assert project_names(alice) == ["Committed"]
    assert len(operations.conflict_copies(alice.pk)) == 1
    assert result.status != "failed"
    assert registry(alice).status != "failed"
