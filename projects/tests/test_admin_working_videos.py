"""The staff console for working videos across users (projects/admin.py)."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from projects.models import WorkingVideo
from syncstore import sync, userdb
from syncstore.models import SyncState
from syncstore.stores import get_store
from syncstore.tests.helpers import new_machine

from .helpers import add_working_video, body, create_project, in_user_db, store_media

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/projects/workingvideo/"
VIDEO_BYTES = bytes(range(256)) * 40  # 10 240 bytes, every offset distinguishable


def preview_url(user, video):
    return f"/admin/projects/workingvideo/{user.pk}/{video.pk}/preview/"


@pytest.fixture
def staff(staff):
    """The root conftest's staff user (no permissions), allowed to view working videos."""
    staff.user_permissions.add(Permission.objects.get(codename="view_workingvideo"))
    return staff


@pytest.fixture
def alices_video(alice, alice_client):
    project = create_project(alice_client, "Cup final")
    name = store_media(alice, "working", VIDEO_BYTES)
    return add_working_video(alice, project["id"], file=name, width=1080, height=1920, duration=2.5)


def test_staff_see_a_users_working_videos_with_a_preview(staff_client, alice, alices_video):
    response = staff_client.get(LIST_URL, {"user": alice.pk})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Cup final" in page
    assert "1080\u00d71920" in page  # the multiplication sign
    assert "2.5 s" in page
    assert "current" in page
    assert f'<video class="working-video-preview" src="{preview_url(alice, alices_video)}"' in page


def test_staff_can_play_the_preview_with_ranges(staff_client, alice, alices_video):
    url = preview_url(alice, alices_video)

    whole = staff_client.get(url)
    ranged = staff_client.get(url, HTTP_RANGE="bytes=100-199")

    assert whole.status_code == 200
    assert whole["Content-Type"] == "video/mp4"
    assert body(whole) == VIDEO_BYTES
    assert ranged.status_code == 206
    assert ranged["Content-Range"] == f"bytes 100-199/{len(VIDEO_BYTES)}"
    assert body(ranged) == VIDEO_BYTES[100:200]


def test_the_staff_members_own_videos_are_not_mixed_in(staff, staff_client, alice, alices_video):
    own = create_project(staff_client, "Staff's own project")
    add_working_video(staff, own["id"])

    alices = staff_client.get(LIST_URL, {"user": alice.pk}).content.decode()
    staffs = staff_client.get(LIST_URL, {"user": staff.pk}).content.decode()

    assert "Cup final" in alices and "Staff&#x27;s own project" not in alices
    assert "Staff&#x27;s own project" in staffs and "Cup final" not in staffs


def test_superseded_videos_are_marked(staff_client, alice, alices_video):
    newer = add_working_video(alice, alices_video.project_id)
    with in_user_db(alice):
        WorkingVideo.objects.filter(pk=alices_video.pk).update(superseded=True)

    page = staff_client.get(LIST_URL, {"user": alice.pk}).content.decode()

    assert page.count('class="working-video"') == 2
    assert "superseded" in page
    # Newest first.
    assert page.index(preview_url(alice, newer)) < page.index(preview_url(alice, alices_video))


def test_the_user_chooser_lists_every_user(staff_client, alice, bob):
    page = staff_client.get(LIST_URL).content.decode()

    assert '<select name="user"' in page
    assert f'<option value="{alice.pk}">alice</option>' in page
    assert f'<option value="{bob.pk}">bob</option>' in page
    assert 'class="working-video"' not in page


def test_the_chosen_user_is_selected(staff_client, alice, alices_video):
    page = staff_client.get(LIST_URL, {"user": alice.pk}).content.decode()
    assert f'<option value="{alice.pk}" selected>alice</option>' in page


def test_a_user_without_videos_shows_an_empty_state(staff_client, alice, alice_client, bob):
    create_project(alice_client, "Nothing exported yet")

    for user in (alice, bob):  # bob has never saved anything at all
        response = staff_client.get(LIST_URL, {"user": user.pk})
        assert response.status_code == 200
        assert f"{user.username} has no working videos yet." in response.content.decode()


def test_looking_does_not_create_a_database_for_a_user_without_data(staff_client, bob):
    staff_client.get(LIST_URL, {"user": bob.pk})
    assert not userdb.database_path(bob.pk).exists()


@pytest.mark.parametrize("user", ["999999", "nobody"])
def test_an_unknown_user_is_404(staff_client, user):
    assert staff_client.get(LIST_URL, {"user": user}).status_code == 404


def test_a_normal_user_is_sent_to_the_admin_login(bob_client, alice, alices_video):
    listing = bob_client.get(LIST_URL, {"user": alice.pk})
    preview = bob_client.get(preview_url(alice, alices_video))

    for response in (listing, preview):
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_a_normal_user_still_cannot_fetch_another_users_media(bob_client, alices_video):
    assert bob_client.get(f"/media/{alices_video.file}").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(alice, alices_video):
    response = Client().get(preview_url(alice, alices_video))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_staff_without_the_view_permission_are_refused(django_user_model, alice, alices_video):
    client = Client()
    client.force_login(django_user_model.objects.create_user("intern", is_staff=True))

    assert client.get(LIST_URL, {"user": alice.pk}).status_code == 403
    assert client.get(preview_url(alice, alices_video)).status_code == 403


def test_a_superuser_may_look(django_user_model, alice, alices_video):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root"))
    assert body(client.get(preview_url(alice, alices_video))) == VIDEO_BYTES


def test_the_preview_serves_only_that_users_working_videos(staff_client, alice, bob, alices_video):
    # The video id under another user (who has no such video) is not alice's file.
    assert staff_client.get(preview_url(bob, alices_video)).status_code == 404
    missing = f"/admin/projects/workingvideo/{alice.pk}/{alices_video.pk + 100}/preview/"
    assert staff_client.get(missing).status_code == 404


def test_staff_still_cannot_use_the_owner_media_route(staff_client, alices_video):
    # The ordinary media view stays owner-only, for staff too.
    assert staff_client.get(f"/media/{alices_video.file}").status_code == 404


def test_the_preview_only_answers_reads(staff_client, alice, alices_video):
    assert staff_client.post(preview_url(alice, alices_video)).status_code == 405


def test_there_are_no_edit_pages(staff_client, alices_video):
    assert staff_client.get(f"{LIST_URL}{alices_video.pk}/change/").status_code == 404
    assert staff_client.get(f"{LIST_URL}add/").status_code == 404


def test_the_admin_index_links_the_console(staff_client):
    page = staff_client.get("/admin/").content.decode()
    assert LIST_URL in page


def test_on_a_machine_without_the_users_copy_it_is_restored_to_look(
    local_store, staff_client, alice, alices_video, data_dir
):
    assert sync.push(alice.pk).ok  # the helper wrote the row without a request
    new_machine(data_dir)

    page = staff_client.get(LIST_URL, {"user": alice.pk}).content.decode()

    assert "Cup final" in page
    assert body(staff_client.get(preview_url(alice, alices_video))) == VIDEO_BYTES


def test_a_snapshot_that_cannot_be_loaded_is_a_warning_not_an_error(
    local_store, staff_client, alice, alices_video, data_dir, tmp_path
):
    broken = tmp_path / "broken"
    broken.write_bytes(b"not a snapshot")
    get_store().put_file(SyncState.objects.get(user=alice).object_key, broken)
    new_machine(data_dir)

    response = staff_client.get(LIST_URL, {"user": alice.pk})

    assert response.status_code == 200
    assert "cannot be loaded right now" in response.content.decode()
    assert staff_client.get(preview_url(alice, alices_video)).status_code == 404
    assert not userdb.database_path(alice.pk).exists()
