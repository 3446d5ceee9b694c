"""The sync registry in the Django admin: what staff see and the operations they run."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from projects.tests.helpers import client_for, create_project
from syncstore import operations, sync, workingcopy
from syncstore.stores import get_store
from syncstore.tests.helpers import (
    another_machine_commits,
    project_names,
    registry,
    write_without_push,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/syncstore/syncstate/"


def conflicts_url(user):
    return f"{CHANGELIST}{user.pk}/conflicts/"


def messages_of(response):
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def run_action(client, action, *users):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(u.pk) for u in users]},
        follow=True,
    )


def make_conflict(user, client, tmp_path):
    """A stale machine's write is refused: the user is in conflict with one conflict copy."""
    create_project(client, "Shared")
    another_machine_commits(user, client, tmp_path, "Committed elsewhere")
    write_without_push(user, "Stale write")
    assert sync.push(user.pk).status == "conflict"
    [copy] = operations.conflict_copies(user.pk)
    return copy["name"]


# --- The changelist -----------------------------------------------------------------------


def test_the_changelist_shows_every_user_with_a_status_badge(
    s3_store, s3_outage, settings, admin_client, alice, bob, alice_client, bob_client
):
    settings.SYNC_PUSH_BACKOFF = []
    create_project(alice_client, "Cup")
    with s3_outage():
        create_project(bob_client, "Offline")

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="status-badge sync-ok"' in html
    assert 'class="status-badge sync-failed"' in html
    assert "css/admin-badges" in html  # the colours, with no style attribute
    assert "style=" not in html.split("<body")[1]
    assert "alice" in html and "bob" in html
    assert "Could not save to the snapshot store" in html  # the full text, in a title
    assert "Force push" in html and "Force pull" in html and "Verify" in html
    assert "delete_selected" not in html  # the registry cannot be deleted
    assert f"{CHANGELIST}add/" not in html


def test_the_changelist_filters_and_searches(
    local_store, admin_client, alice, bob, alice_client, bob_client
):
    create_project(alice_client, "Cup")
    create_project(bob_client, "Final")
    write_without_push(bob, "Offline")
    sync.record_failure(bob.pk, "boom")

    def listed(query):
        response = admin_client.get(CHANGELIST + query)
        assert response.status_code == 200
        return sorted(row.user.username for row in response.context["cl"].result_list)

    assert listed("") == ["alice", "bob"]
    assert listed("?q=ali") == ["alice"]
    assert listed("?status__exact=failed") == ["bob"]
    assert listed("?unpushed=yes") == ["bob"]
    assert listed("?unpushed=no") == ["alice"]


def test_the_change_page_is_read_only_and_links_to_the_conflict_copies(
    local_store, admin_client, alice, alice_client
):
    create_project(alice_client, "Cup")

    response = admin_client.get(f"{CHANGELIST}{alice.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert conflicts_url(alice) in html
    assert "at version 1" in html
    assert 'name="_save"' not in html
    before = registry(alice)
    response = admin_client.post(f"{CHANGELIST}{alice.pk}/change/", {"version": "0"})
    assert response.status_code == 403
    assert registry(alice).version == before.version
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}{alice.pk}/delete/", {"post": "yes"}).status_code == 403
    assert registry(alice) is not None


# --- Actions ------------------------------------------------------------------------------


def test_force_push_commits_the_working_copy_as_a_new_version(
    store, admin_client, alice, bob, alice_client, bob_client
):
    create_project(alice_client, "Cup")
    create_project(bob_client, "Final")

    response = run_action(admin_client, "force_push", alice, bob)

    assert response.status_code == 200
    assert messages_of(response) == [("success", "Force push: ok for alice v2, bob v2.")]
    assert registry(alice).version == 2
    assert registry(bob).version == 2


def test_force_push_warns_about_a_stale_copy_and_keeps_it(
    local_store, admin_client, alice, alice_client, tmp_path
):
    create_project(alice_client, "Shared")
    another_machine_commits(alice, alice_client, tmp_path, "Newer")

    response = run_action(admin_client, "force_push", alice)

    [(level, text)] = messages_of(response)
    assert level == "warning"
    assert text.startswith("Force push of alice: conflict v2: Your changes were based on version 1")
    assert registry(alice).version == 2
    assert len(operations.conflict_copies(alice.pk)) == 1


def test_force_pull_replaces_unpushed_writes_and_keeps_them_as_a_conflict_copy(
    store, admin_client, alice, alice_client
):
    create_project(alice_client, "Committed")
    write_without_push(alice, "Unpushed")

    response = run_action(admin_client, "force_pull", alice)

    assert messages_of(response) == [("success", "Force pull: ok for alice v1.")]
    assert project_names(alice) == ["Committed"]
    assert workingcopy.read_state(alice.pk).dirty is False
    assert len(operations.conflict_copies(alice.pk)) == 1


def test_force_pull_reports_an_unreachable_store(
    s3_store, s3_outage, admin_client, alice, alice_client
):
    create_project(alice_client, "Committed")

    with s3_outage():
        response = run_action(admin_client, "force_pull", alice)

    [(level, text)] = messages_of(response)
    assert level == "warning"
    assert text.startswith("Force pull of alice: failed v1: the snapshot store is unreachable")


def test_verify_reports_sound_and_corrupt_snapshots(
    store, admin_client, alice, bob, alice_client, bob_client, tmp_path
):
    create_project(alice_client, "Good")
    create_project(bob_client, "Broken")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x78\x01" + b"not a snapshot" * 100)
    get_store().put_file(registry(bob).object_key, garbage)

    response = run_action(admin_client, "verify_snapshot", alice, bob)

    found = messages_of(response)
    assert ("success", "Verify: ok for alice v1 (snapshot verified).") in found
    [warning] = [text for level, text in found if level == "warning"]
    assert warning.startswith("Verify of bob: failed v1: the snapshot for version 1 is corrupt")
    assert registry(bob).version == 1


def test_actions_are_recorded_in_the_admin_log(local_store, admin_client, alice, alice_client):
    from django.contrib.admin.models import LogEntry

    create_project(alice_client, "Cup")
    run_action(admin_client, "verify_snapshot", alice)

    entry = LogEntry.objects.get(object_id=str(alice.pk))
    assert "Verify: ok v1" in entry.get_change_message()


def test_acknowledging_a_conflict_clears_it(
    local_store, admin_client, alice, alice_client, tmp_path
):
    make_conflict(alice, alice_client, tmp_path)

    response = run_action(admin_client, "acknowledge_conflict", alice)

    assert messages_of(response) == [("success", "Conflict marked as seen for alice.")]
    assert registry(alice).status == "ok"
    assert len(operations.conflict_copies(alice.pk)) == 1  # the copy itself is kept


# --- Conflict copies ----------------------------------------------------------------------


def test_the_conflicts_page_lists_copies_and_restoring_one_commits_it(
    store, admin_client, alice, alice_client, tmp_path
):
    name = make_conflict(alice, alice_client, tmp_path)
    assert registry(alice).version == 2

    response = admin_client.get(conflicts_url(alice))

    assert response.status_code == 200
    html = response.content.decode()
    assert name in html
    assert "csrfmiddlewaretoken" in html
    assert "Restore as version 3" in html

    response = admin_client.post(conflicts_url(alice), {"name": name})
    assert response.status_code == 302
    assert response["Location"] == conflicts_url(alice)
    response = admin_client.get(response["Location"])
    assert messages_of(response) == [
        ("success", f"Restored {name} for alice: it is now version 3.")
    ]
    row = registry(alice)
    assert (row.version, row.status) == (3, "ok")
    assert project_names(alice) == ["Shared", "Stale write"]


def test_restoring_an_unknown_copy_changes_nothing(
    local_store, admin_client, alice, alice_client, tmp_path
):
    make_conflict(alice, alice_client, tmp_path)

    for name in ["nope.sqlite3.z", "../../leases/1.lock", ""]:
        response = admin_client.post(conflicts_url(alice), {"name": name}, follow=True)
        [(level, text)] = messages_of(response)
        assert level == "error"
        assert "has no conflict copy" in text
    assert registry(alice).version == 2


def test_the_conflicts_page_of_a_user_without_a_registry_row_is_404(admin_client, alice):
    assert admin_client.get(conflicts_url(alice)).status_code == 404


def test_restoring_needs_a_csrf_token(local_store, admin_user, alice, alice_client, tmp_path):
    name = make_conflict(alice, alice_client, tmp_path)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post(conflicts_url(alice), {"name": name})

    assert response.status_code == 403
    assert registry(alice).version == 2


# --- Who may do what ----------------------------------------------------------------------


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(
    local_store, alice, bob, alice_client, tmp_path
):
    name = make_conflict(alice, alice_client, tmp_path)
    bob_client = client_for(bob)

    for response in [
        bob_client.get(CHANGELIST),
        bob_client.get(conflicts_url(alice)),
        bob_client.post(conflicts_url(alice), {"name": name}),
        bob_client.post(CHANGELIST, {"action": "force_push", "_selected_action": [alice.pk]}),
    ]:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    assert registry(alice).version == 2


def test_staff_without_permissions_get_403(local_store, staff, alice, alice_client, tmp_path):
    name = make_conflict(alice, alice_client, tmp_path)
    client = client_for(staff)

    assert client.get(CHANGELIST).status_code == 403
    assert client.get(f"{CHANGELIST}{alice.pk}/change/").status_code == 403
    assert client.get(conflicts_url(alice)).status_code == 403
    assert client.post(conflicts_url(alice), {"name": name}).status_code == 403
    response = client.post(CHANGELIST, {"action": "force_pull", "_selected_action": [alice.pk]})
    assert response.status_code == 403
    assert registry(alice).version == 2


def test_staff_who_may_only_view_see_the_registry_but_cannot_operate(
    local_store, staff, alice, alice_client, tmp_path
):
    name = make_conflict(alice, alice_client, tmp_path)
    staff.user_permissions.add(Permission.objects.get(codename="view_syncstate"))
    client = client_for(staff)

    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "force_push" not in response.content.decode()  # no actions offered
    response = client.get(conflicts_url(alice))
    assert response.status_code == 200
    assert name in response.content.decode()
    assert "Restore as version" not in response.content.decode()
    assert client.post(conflicts_url(alice), {"name": name}).status_code == 403
    client.post(CHANGELIST, {"action": "force_push", "_selected_action": [alice.pk]})
    assert registry(alice).version == 2


def test_staff_with_the_change_permission_may_operate(
    local_store, staff, alice, alice_client, tmp_path
):
    name = make_conflict(alice, alice_client, tmp_path)
    staff.user_permissions.add(Permission.objects.get(codename="change_syncstate"))
    client = client_for(staff)

    response = client.post(conflicts_url(alice), {"name": name}, follow=True)

    assert messages_of(response)[0][0] == "success"
    assert registry(alice).version == 3
