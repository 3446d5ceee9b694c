"""Fixtures shared by every app's tests.

Each test gets its own data folder (per-user databases, media): user ids repeat across
tests because the central test database is rolled back, and the per-user SQLite files
are real files that must not leak from one test into the next.
"""

import pytest
from django.test import Client

from syncstore import userdb


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    # A file, not SQLite's shared in-memory database: ASGI tests serve requests from
    # several threads at once, which shared-cache memory databases handle badly.
    from django.conf import settings

    default = settings.DATABASES["default"]
    if default["ENGINE"] == "django.db.backends.sqlite3":
        default.setdefault("TEST", {})["NAME"] = str(
            tmp_path_factory.mktemp("central") / "test-central.sqlite3"
        )


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    settings.REELEDITOR_DATA_DIR = path
    settings.MEDIA_ROOT = path / "media"
    userdb.forget_all()
    yield path
    userdb.forget_all()


def _make_user(django_user_model, username):
    return django_user_model.objects.create_user(username=username, password="pw-" + username)


@pytest.fixture
def alice(db, django_user_model):
    return _make_user(django_user_model, "alice")


@pytest.fixture
def bob(db, django_user_model):
    return _make_user(django_user_model, "bob")


@pytest.fixture
def alice_client(alice):
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob):
    client = Client()
    client.force_login(bob)
    return client
