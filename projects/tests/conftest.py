"""Fixtures of the projects tests (plain helpers are in ``helpers.py``).

Users, their signed-in clients and the synthetic ``game_clip_path`` are in the root
``conftest.py``.
"""

import pytest

from .helpers import create_project, upload_clip


@pytest.fixture
def project(alice_client):
    """A new project of alice's (``POST /api/projects``), as the API answered it."""
    return create_project(alice_client)


@pytest.fixture
def clip(alice_client, project, game_clip_path):
    """The game clip uploaded to alice's ``project``, as the API answered it."""
    return upload_clip(alice_client, project["id"], game_clip_path)
