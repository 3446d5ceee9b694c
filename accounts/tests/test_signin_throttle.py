"""Sign-in throttling: a password guesser is stopped per account and per address.

Real sign-ins through ``/accounts/login/`` (and the admin's), counted by django-axes in
the central database. Across two processes:
syncstore/tests/faults/test_signin_throttle_across_instances.py.
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts.signin import client_ip

pytestmark = pytest.mark.django_db
LIMIT = 5


@pytest.fixture(autouse=True)
def throttle(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def sign_in(client, username, password, url="/accounts/login/", address="10.0.0.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_account_and_say_so(alice):
    client = Client()
    for _ in range(LIMIT - 1):
        answer = sign_in(client, "alice", "guess")
        assert answer.status_code == 200 and b"correct username and password" in answer.content

    locked = sign_in(client, "alice", "guess")
    assert locked.status_code == 429
    assert b"Too many sign-in attempts" in locked.content
    assert b"15 minutes" in locked.content

    # The right password no longer helps, from anywhere, while the lock lasts.
    right = sign_in(Client(), "alice", "pw-alice", address="10.9.9.9")
    assert right.status_code == 429 and not signed_in(client)


def test_an_address_trying_many_accounts_is_locked_but_others_are_not(alice, django_user_model):
    for n in range(LIMIT):
        sign_in(Client(), f"nobody{n}", "guess", address="10.0.0.66")

    assert sign_in(Client(), "alice", "pw-alice", address="10.0.0.66").status_code == 429
    elsewhere = Client()
    assert sign_in(elsewhere, "alice", "pw-alice", address="10.0.0.7").status_code == 302
    assert signed_in(elsewhere)


def test_a_right_password_resets_the_accounts_count(alice):
    client = Client()
    for _ in range(LIMIT - 1):
        sign_in(client, "alice", "guess")
    assert sign_in(client, "alice", "pw-alice").status_code == 302
    for _ in range(LIMIT - 1):
        assert sign_in(Client(), "alice", "guess").status_code == 200
    assert sign_in(Client(), "alice", "pw-alice").status_code == 302


def test_the_lock_ends_after_the_cool_off(alice):
    for _ in range(LIMIT):
        sign_in(Client(), "alice", "guess")
    assert sign_in(Client(), "alice", "pw-alice").status_code == 429
    # Fifteen minutes and a second later (the attempts' clock moved back, no sleeping):
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert sign_in(Client(), "alice", "pw-alice").status_code == 302


def test_the_admin_sign_in_is_throttled_too(staff):
    for _ in range(LIMIT):
        sign_in(Client(), "staff", "guess", url="/admin/login/")
    assert sign_in(Client(), "staff", "pw-staff", url="/admin/login/").status_code == 429


def test_staff_unlock_an_account_in_the_admin(alice, django_user_model):
    for _ in range(LIMIT):
        sign_in(Client(), "alice", "guess")
    assert sign_in(Client(), "alice", "pw-alice").status_code == 429
    admin = django_user_model.objects.create_superuser("boss", password="pw-boss")
    staff = Client()
    staff.force_login(admin)
    listing = staff.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and b"alice" in listing.content

    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    confirmed = staff.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert confirmed.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert sign_in(Client(), "alice", "pw-alice").status_code == 302


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "client"),
    [
        (0, "6.6.6.6", "10.0.0.1", "10.0.0.1"),  # no proxy: the header is the client's own
        (1, "6.6.6.6, 203.0.113.9", "127.0.0.1", "203.0.113.9"),  # nginx appended the last
        (1, "", "127.0.0.1", "127.0.0.1"),
        (2, "6.6.6.6, 203.0.113.9, 10.1.1.1", "10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.2", "10.0.0.2"),  # fewer hops than proxies: not trusted
    ],
)
def test_the_client_address_behind_trusted_proxies(settings, proxies, forwarded, remote, client):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR=remote)
    if forwarded:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_ip(request) == client
