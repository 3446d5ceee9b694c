"""Password reset by email and password change, through Django's views and our pages."""

import re

import pytest
from django.test import Client

from reeleditor import settings as configured

pytestmark = pytest.mark.django_db
LINK = re.compile(r"http://testserver(/accounts/password/reset/[^/\s]+/[^/\s]+/)")


@pytest.fixture
def coach(django_user_model):
    return django_user_model.objects.create_user(
        "coach", email="coach@example.org", password="old-pw-7x!"
    )


def signs_in(username, password) -> bool:
    answer = Client().post("/accounts/login/", {"username": username, "password": password})
    return answer.status_code == 302


def test_the_embedded_default_prints_email_on_the_console():
    assert configured.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"


def test_a_reset_link_from_the_console_sets_a_new_password_once(coach, settings, capsys):
    settings.EMAIL_BACKEND = configured.EMAIL_BACKEND  # the console, as `make run` has it
    client = Client()
    assert client.get("/accounts/login/").content.count(b"/accounts/password/reset/") == 1

    sent = client.post("/accounts/password/reset/", {"email": "coach@example.org"})
    assert sent.status_code == 302 and sent["Location"] == "/accounts/password/reset/sent/"
    assert b"Check your email" in client.get(sent["Location"]).content
    printed = capsys.readouterr().out
    assert "To: coach@example.org" in printed and "Reset your Reel editor password" in printed
    link = LINK.search(printed)[1]

    form = client.get(link, follow=True)  # Django swaps the token for a session key
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "new-pw-9y?", "new_password2": "new-pw-9y?"},
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/password/reset/done/"
    assert signs_in("coach", "new-pw-9y?") and not signs_in("coach", "old-pw-7x!")

    again = Client().get(link, follow=True)
    assert b"This link no longer works" in again.content


def test_an_unknown_address_is_answered_the_same_and_nothing_is_sent(coach, mailoutbox):
    sent = Client().post("/accounts/password/reset/", {"email": "nobody@example.org"})
    assert sent.status_code == 302 and sent["Location"] == "/accounts/password/reset/sent/"
    assert mailoutbox == []


def test_changing_the_password_signs_out_the_other_browsers(coach):
    here, elsewhere = Client(), Client()
    for client in (here, elsewhere):
        client.post("/accounts/login/", {"username": "coach", "password": "old-pw-7x!"})
    assert elsewhere.get("/api/projects").status_code == 200

    changed = here.post(
        "/accounts/password/change/",
        {
            "old_password": "old-pw-7x!",
            "new_password1": "new-pw-9y?",
            "new_password2": "new-pw-9y?",
        },
    )

    assert changed.status_code == 302 and changed["Location"] == "/accounts/password/change/done/"
    assert here.get("/api/projects").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/api/projects").status_code == 401
    assert signs_in("coach", "new-pw-9y?")


def test_sign_up_takes_an_email_for_resets(mailoutbox):
    client = Client()
    made = client.post(
        "/accounts/signup/",
        {
            "username": "parent",
            "email": "parent@example.org",
            "password1": "Kick-off-42!",
            "password2": "Kick-off-42!",
        },
    )
    assert made.status_code == 302
    Client().post("/accounts/password/reset/", {"email": "parent@example.org"})
    assert [m.to for m in mailoutbox] == [["parent@example.org"]]
