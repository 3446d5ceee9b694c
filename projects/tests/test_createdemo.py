import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from projects.models import Project
from syncstore.binding import bound_to_user
from syncstore.models import SyncState

pytestmark = pytest.mark.django_db


def test_it_creates_a_demo_user_with_a_project_and_a_playable_clip(settings, client):
    call_command("createdemo", "--seconds=1", "--width=640", "--height=360")

    user = User.objects.get(username="demo")
    signed_in = client.post("/accounts/login/", {"username": "demo", "password": "demo"})
    assert signed_in.status_code == 302, signed_in.content  # the demo's password works
    with bound_to_user(user.pk):
        project = Project.objects.get()
        clip = project.clips.get()
    assert project.aspect_ratio == "9:16"
    assert (clip.width, clip.height, clip.frame_count) == (640, 360, 30)
    assert clip.has_audio
    assert (settings.MEDIA_ROOT / clip.file).stat().st_size == clip.size_bytes
    media = client.get(f"/media/{clip.file}")
    assert media.status_code == 200
    # Written like any other change: committed as the user's first snapshot.
    assert SyncState.objects.get(user=user).version == 1


def test_running_it_twice_keeps_one_demo_project():
    call_command("createdemo", "--seconds=0.5", "--width=320", "--height=180")
    call_command("createdemo", "--seconds=0.5", "--width=320", "--height=180")
    with bound_to_user(User.objects.get(username="demo").pk):
        assert Project.objects.count() == 1
