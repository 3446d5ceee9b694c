"""Sign-up is limited per address, counted in the central database."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import SignupAttempt

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.SIGNUP_LIMIT = 3
    settings.SIGNUP_WINDOW_SECONDS = 3600


def sign_up(username, address="10.0.0.1"):
    form = {"username": username, "password1": "Kick-off-42!", "password2": "Kick-off-42!"}
    return Client().post("/accounts/signup/", form, REMOTE_ADDR=address)


def test_an_address_past_the_limit_is_refused_and_no_account_is_made():
    assert [sign_up(f"parent{n}").status_code for n in range(3)] == [302, 302, 302]

    refused = sign_up("one-too-many")

    assert refused.status_code == 429
    assert b"Too many new accounts from your address" in refused.content
    assert not get_user_model().objects.filter(username="one-too-many").exists()
    assert sign_up("from-elsewhere", address="10.0.0.2").status_code == 302


def test_failed_forms_count_too():
    for _ in range(3):
        failed = Client().post("/accounts/signup/", {"username": "x"}, REMOTE_ADDR="10.0.0.1")
        assert failed.status_code == 200
    assert sign_up("finally").status_code == 429


def test_the_window_passes_and_staff_can_lift_it(settings):
    for n in range(4):
        sign_up(f"parent{n}")
    assert sign_up("later").status_code == 429
    SignupAttempt.objects.filter(address="10.0.0.1").delete()  # what the admin's delete does
    assert sign_up("later").status_code == 302
    settings.SIGNUP_WINDOW_SECONDS = 0  # every earlier attempt is outside the window now
    assert sign_up("much-later").status_code == 302


def test_signup_attempts_are_in_the_admin(admin_client):
    sign_up("parent")
    listing = admin_client.get("/admin/accounts/signupattempt/")
    assert listing.status_code == 200 and b"10.0.0.1" in listing.content
