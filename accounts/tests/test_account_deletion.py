"""Delete my account: the password to ask, every session ended at once, a grace period in
which signing in keeps the account, and afterwards every object and file gone.

Real requests through the account pages, real sign-ins (counted by django-axes), real
SQLite working copies and a real S3 endpoint (moto) for snapshots and media.
"""

import io
import shutil

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from accounts import dataexport, deletion
from accounts.models import DataExport, DeletionRequest
from exports.models import ExportJob
from projects.tests.helpers import add_working_video, client_for, create_project, upload_clip
from syncstore import keys, operations, userdb
from syncstore.models import DeletedAccount, SnapshotVersion, SyncState
from syncstore.tests.helpers import another_machine_commits, write_without_push

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "pw-alice"  # the root conftest's users have "pw-<name>"


def ask_to_delete(client, password=PASSWORD):
    return client.post("/accounts/delete/", {"password": password})


def signs_in(username, password) -> Client | None:
    client = Client()
    answer = client.post("/accounts/login/", {"username": username, "password": password})
    return client if answer.status_code == 302 else None


def signed_in(client) -> bool:
    return client.get("/api/projects").status_code == 200


def stored_media(moto_client, bucket, user_id) -> list[str]:
    listing = moto_client.list_objects_v2(Bucket=bucket, Prefix=f"media/users/{user_id}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_the_page_says_what_goes_and_a_wrong_password_deletes_nothing(
    local_store, alice, alice_client
):
    page = alice_client.get("/accounts/delete/")
    assert page.status_code == 200
    assert b"every clip you uploaded" in page.content and b"7 days" in page.content

    refused = ask_to_delete(alice_client, "not-my-password")
    assert refused.status_code == 200
    assert b"That is not your password." in refused.content
    alice.refresh_from_db()
    assert alice.is_active and not DeletionRequest.objects.exists()
    assert signed_in(alice_client)
    # Counted as a failed sign-in: a stolen session cannot guess the password here.
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 1


def test_deleting_ends_every_session_of_the_account_at_once(local_store, alice, alice_client):
    on_the_phone = client_for(alice)
    assert signed_in(on_the_phone)

    answer = ask_to_delete(alice_client)

    assert answer.status_code == 302 and answer["Location"] == "/accounts/deleted/"
    page = alice_client.get("/accounts/deleted/")
    assert b"Sign in" in page.content and b"before then" in page.content
    assert not signed_in(alice_client) and not signed_in(on_the_phone)
    assert on_the_phone.get("/").status_code == 302  # to the sign-in page
    alice.refresh_from_db()
    assert not alice.is_active
    assert DeletionRequest.objects.filter(user=alice).exists()


def test_signing_in_within_the_grace_period_keeps_the_account(local_store, alice, alice_client):
    create_project(alice_client, "Kept")
    on_the_phone = client_for(alice)
    ask_to_delete(alice_client)

    assert signs_in("alice", "wrong") is None
    back = signs_in("alice", PASSWORD)

    assert back is not None
    alice.refresh_from_db()
    assert alice.is_active and not DeletionRequest.objects.exists()
    assert [p["name"] for p in back.get("/api/projects").json()["projects"]] == ["Kept"]
    assert b"Welcome back" in back.get("/").content
    assert not signed_in(on_the_phone)  # the sessions ended by the request stay ended
    assert deletion.delete_due_accounts() == 0


def test_an_account_switched_off_by_staff_still_cannot_sign_in(local_store, alice):
    alice.is_active = False
    alice.save()
    assert signs_in("alice", PASSWORD) is None
    alice.refresh_from_db()
    assert not alice.is_active


def test_after_the_grace_period_every_object_and_file_of_the_account_is_gone(
    s3_media, alice, alice_client, bob, bob_client, game_clip_path, settings, moto_client, tmp_path
):
    project_id = create_project(alice_client, "Game")["id"]
    upload_clip(alice_client, project_id, game_clip_path)
    add_working_video(alice, project_id)
    another_machine_commits(alice, alice_client, tmp_path, "Elsewhere")
    write_without_push(alice, "Unpushed")
    alice_client.get("/api/projects")  # the stale copy's writes become a conflict copy
    assert operations.conflict_copies(alice.pk)
    zip_of_it = DataExport.objects.create(user=alice)
    dataexport.build(zip_of_it.pk)  # an export of their data, never downloaded
    assert DataExport.objects.get(pk=zip_of_it.pk).status == "ready"
    bob_project = create_project(bob_client, "Bob's")["id"]
    upload_clip(bob_client, bob_project, game_clip_path)
    user_id, bucket = alice.pk, settings.S3_BUCKET
    assert stored_media(moto_client, bucket, user_id)
    assert s3_media.list_keys(keys.snapshot_prefix(user_id))
    assert s3_media.list_keys(keys.conflict_prefix(user_id))

    settings.ACCOUNT_PURGE_GRACE_SECONDS = 3600
    ask_to_delete(alice_client)
    call_command("purgeaccounts", stdout=io.StringIO(), stderr=io.StringIO())
    assert DeletionRequest.objects.filter(user_id=user_id).exists()  # still in grace
    assert stored_media(moto_client, bucket, user_id) and userdb.user_dir(user_id).exists()

    settings.ACCOUNT_PURGE_GRACE_SECONDS = 0
    out = io.StringIO()
    call_command("purgeaccounts", stdout=out, stderr=io.StringIO())

    assert "1 accounts deleted as their owners asked" in out.getvalue()
    assert not type(alice).objects.filter(pk=user_id).exists()
    assert s3_media.list_keys(keys.snapshot_prefix(user_id)) == []
    assert s3_media.list_keys(keys.conflict_prefix(user_id)) == []
    assert stored_media(moto_client, bucket, user_id) == []  # the zip went with the rest
    assert not userdb.user_dir(user_id).exists()
    for model in (SyncState, SnapshotVersion, ExportJob, DataExport, DeletionRequest):
        assert not model.objects.filter(user_id=user_id).exists(), model
    tombstone = DeletedAccount.objects.get(user_id=user_id)
    assert tombstone.purged_at is not None and tombstone.username == "alice"
    # The other account is untouched.
    assert [p["name"] for p in bob_client.get("/api/projects").json()["projects"]] == ["Bob's"]
    assert stored_media(moto_client, bucket, bob.pk)


def test_an_id_given_out_again_never_sees_what_the_deleted_account_wrote(
    s3_store, s3_outage, alice, alice_client, django_user_model, settings
):
    create_project(alice_client, "Alice's secret")
    user_id = alice.pk
    ask_to_delete(alice_client)
    settings.ACCOUNT_PURGE_GRACE_SECONDS = 0
    with s3_outage():  # the purge cannot reach the store: the snapshots are still there
        assert deletion.delete_due_accounts() == 1
    assert DeletedAccount.objects.get(user_id=user_id).purged_at is None
    assert s3_store.list_keys(keys.snapshot_prefix(user_id))

    # The central database gives the id to someone new (a reset sequence, say).
    newcomer = django_user_model.objects.create_user(id=user_id, username="newcomer")
    client = client_for(newcomer)
    assert client.get("/api/projects").json()["projects"] == []
    create_project(client, "Mine")
    userdb.forget_all()
    shutil.rmtree(userdb.user_dir(user_id))  # and on a machine that has no copy yet
    assert [p["name"] for p in client.get("/api/projects").json()["projects"]] == ["Mine"]
