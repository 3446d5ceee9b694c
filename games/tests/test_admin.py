"""The staff console for games across users (games/admin.py)."""

import pytest
from django.contrib.auth.models import Permission

from .test_plays_api import a_game, mark

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/games/game/"


@pytest.fixture
def viewer(staff):
    staff.user_permissions.add(Permission.objects.get(codename="view_game"))
    return staff


def test_staff_see_a_users_games_and_plays(viewer, staff_client, alice, alice_client):
    game = a_game(alice, name="Cup final", opponent="Rovers")
    mark(alice_client, game, start=61.5, end=74.0, name="Header goal", rating=5, tags=["#9"])

    response = staff_client.get(LIST_URL, {"user": alice.pk})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Cup final" in page and "Rovers" in page
    assert "61.5\u201374.0 s Header goal \u00b7 5\u2605 \u00b7 #9" in page
    assert 'class="status-badge game-ready"' in page
    assert "style=" not in page.split("<body", 1)[1]  # the CSP refuses style attributes


def test_a_user_without_games_is_said_to_have_none(viewer, staff_client, bob):
    page = staff_client.get(LIST_URL, {"user": bob.pk}).content.decode()
    assert "has no games yet" in page


def test_staff_without_the_permission_are_refused(staff_client, alice):
    assert staff_client.get(LIST_URL, {"user": alice.pk}).status_code == 403


def test_an_unknown_user_is_not_found(viewer, staff_client):
    assert staff_client.get(LIST_URL, {"user": "999"}).status_code == 404
