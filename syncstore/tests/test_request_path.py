"""What a request does on its path, and what it need not.

A write asks the central database twice: the claim and the commit, nothing else.

The registry row comes back with the lease's claim (``UPDATE ... RETURNING``) and only
the lease holder can move it, so neither the freshness check nor the push reads it
again; the commit that ends the request's unit of work also clears the claim, so there
is no release statement. Each statement here is a round trip on every autosave.

A read's ``X-Sync-Status`` reads the change counter through the request's own
connection to the user's database, not a new one.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from projects.models import Project
from projects.tests.helpers import create_project, post_json
from syncstore import changecounter, leases, sync
from syncstore.binding import bound_to_user
from syncstore.models import SyncState
from syncstore.tests.helpers import registry, write_without_push

REGISTRY_TABLE = SyncState._meta.db_table


def registry_statements(queries) -> list[str]:
    return [q["sql"] for q in queries if REGISTRY_TABLE in q["sql"]]


def rename(client, project_id, name):
    return post_json(client, f"/api/projects/{project_id}", {"name": name}, "patch")


@pytest.mark.django_db(transaction=True)
def test_a_write_asks_the_registry_twice_claim_and_commit(local_store, alice, alice_client):
    project_id = create_project(alice_client, "Game")["id"]
    fence = registry(alice).fence

    with CaptureQueriesContext(connection) as captured:
        response = rename(alice_client, project_id, "Game, renamed")

    assert (response.status_code, response["X-Sync-Status"]) == (200, "ok")
    statements = registry_statements(captured.captured_queries)
    assert len(statements) == 2, statements
    claim, commit = statements
    assert claim.startswith("UPDATE") and "RETURNING" in claim
    assert commit.startswith("UPDATE") and "lease_holder" in commit
    row = registry(alice)
    assert (row.version, row.fence, row.lease_holder, row.lease_expires_at) == (
        2,
        fence + 1,
        "",
        None,
    )


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_free_at_once_after_a_write(local_store, alice, alice_client):
    project_id = create_project(alice_client, "Game")["id"]
    rename(alice_client, project_id, "Again")
    with leases.lease(alice.pk, wait=0) as held:  # no wait: nobody holds it
        assert held.row.version == registry(alice).version == 2


@pytest.mark.django_db(transaction=True)
def test_a_refused_commit_still_releases_the_lease(local_store, alice, alice_client, monkeypatch):
    project_id = create_project(alice_client, "Game")["id"]
    real_commit = sync._commit

    def someone_else_commits_first(user_id, expected, lease, key, packed):
        SyncState.objects.filter(user_id=user_id).update(version=expected + 1)
        return real_commit(user_id, expected, lease, key, packed)

    monkeypatch.setattr(sync, "_commit", someone_else_commits_first)
    assert rename(alice_client, project_id, "Refused").status_code == 409
    row = registry(alice)
    assert (row.lease_holder, row.lease_expires_at) == ("", None)


@pytest.mark.django_db(transaction=True)
def test_a_holder_that_goes_on_after_a_commit_still_holds_the_lease(local_store, alice):
    # Only push_written's push ends a unit of work; a holder that pushes and goes on
    # (an export's finalize retry, an operator command) keeps the claim until it ends.
    with leases.lease(alice.pk) as held, bound_to_user(alice.pk):
        sync.ensure_fresh(alice.pk)
        Project.objects.create(name="Mine", aspect_ratio="9:16")
        assert sync.push(alice.pk).ok
        assert registry(alice).lease_holder == held.token
    assert registry(alice).lease_holder == ""


@pytest.mark.django_db(transaction=True)
def test_a_read_says_its_status_without_opening_the_database_again(
    local_store, alice, alice_client, monkeypatch
):
    create_project(alice_client, "Game")
    monkeypatch.setattr(changecounter, "read_file", _must_not_be_called)
    assert alice_client.get("/api/projects")["X-Sync-Status"] == "ok"
    monkeypatch.undo()

    write_without_push(alice, "Not pushed yet")  # a write no snapshot has
    monkeypatch.setattr(changecounter, "read_file", _must_not_be_called)
    assert alice_client.get("/api/projects")["X-Sync-Status"] == "pending"


def _must_not_be_called(*args, **kwargs):
    raise AssertionError("a new connection was opened to read the change counter")
