"""Small helpers the projects tests share."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from syncstore.binding import bound_to_user


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
