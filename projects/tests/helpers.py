"""Small helpers the projects tests share (and the other apps' tests: requests, uploads).

Fixtures live in ``conftest.py`` (the projects tests' own) and the root ``conftest.py``
(users and their signed-in clients).
"""

import json
import uuid
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from projects import media
from projects.models import FinalVideo, Project, WorkingVideo
from syncstore.binding import bound_to_user


def client_for(user):
    """A test client signed in as ``user``."""
    client = Client()
    client.force_login(user)
    return client


def body(response):
    """The whole body of a response, streamed or not."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def post_json(client, url, data, method="post"):
    return getattr(client, method)(url, json.dumps(data), content_type="application/json")


def create_project(client, name="Game", aspect_ratio="9:16"):
    response = post_json(client, "/api/projects", {"name": name, "aspect_ratio": aspect_ratio})
    assert response.status_code == 201, response.content
    return response.json()


def upload(client, project_id, path, filename="game.mp4"):
    with open(path, "rb") as handle:
        data = handle.read()
    file = SimpleUploadedFile(filename, data, content_type="video/mp4")
    return client.post(f"/api/projects/{project_id}/clips", {"file": file})


def upload_clip(client, project_id, path):
    response = upload(client, project_id, path)
    assert response.status_code == 201, response.content
    return response.json()


def in_user_db(user):
    """Use as ``with in_user_db(alice): Project.objects...`` to inspect a user's rows."""
    return bound_to_user(user.pk)


def multipart(filename, data, field="file", content_type="video/mp4", filename_star=None):
    """A hand-built multipart body, for filenames the test client would clean up first.

    Returns ``(body, content_type)`` for ``client.post(url, body, content_type=...)``.
    ``filename_star`` adds an RFC 2231 ``filename*`` parameter (already encoded).
    """
    boundary = "reeleditor-test-boundary"
    disposition = f'form-data; name="{field}"; filename="{filename}"'
    if filename_star is not None:
        disposition += f"; filename*={filename_star}"
    body = (
        (
            f"--{boundary}\r\n"
            f"Content-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def media_files(settings):
    """Every stored file under MEDIA_ROOT, as sorted storage names."""
    root = Path(settings.MEDIA_ROOT)
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def store_media(user, kind, data=b"\x00" * 1000, extension="mp4"):
    """Write ``data`` into media storage under ``user``'s prefix; returns the name."""
    return media.save(media.new_name(user.pk, kind, extension), ContentFile(data))


def add_working_video(user, project_id, *, file=None, width=1080, height=1920, duration=2.0):
    """Give ``user``'s project a working video row (as a finished export would)."""
    with in_user_db(user):
        project = Project.objects.get(pk=project_id)
        video = WorkingVideo.objects.create(
            project=project,
            file=file or store_media(user, "working"),
            width=width,
            height=height,
            duration=duration,
            fps=30.0,
            frame_count=round(duration * 30),
            size_bytes=1000,
            export_job_id=uuid.uuid4().hex,
        )
        project.working_video = video
        project.save(update_fields=["working_video"])
        return video


def add_final_video(user, project_id, *, file=None, poster=""):
    with in_user_db(user):
        project = Project.objects.get(pk=project_id)
        return FinalVideo.objects.create(
            project=project,
            working_video=project.working_video,
            file=file or store_media(user, "final"),
            poster=poster,
            width=1080,
            height=1920,
            duration=2.0,
            fps=30.0,
            frame_count=60,
            size_bytes=1000,
            export_job_id=uuid.uuid4().hex,
        )
