"""Fixtures shared by every app's tests.

Each test gets its own data folder (per-user databases, media): user ids repeat across
tests because the central test database is rolled back, and the per-user SQLite files
are real files that must not leak from one test into the next.
"""

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import TransactionTestCase

from projects.tests.helpers import client_for
from syncstore import userdb

# Shared helper modules hold assertions of their own: rewritten like the tests' are
# (before the plugins below import them).
pytest.register_assert_rewrite("syncstore.tests.helpers", "reeleditor.tests.browser")

# Fixtures for every app's tests: the object store (moto S3 endpoint, buckets, outages,
# local store, ``store`` on both), and the browser tests' live servers and Chromium.
pytest_plugins = ["syncstore.tests.fixtures", "reeleditor.tests.browser.plugin"]


@pytest.fixture(autouse=True, scope="session")
def allow_user_database_connections():
    """Let tests open per-user databases.

    Django's test cases refuse connections to aliases not declared in ``databases``,
    and per-user aliases only come into being while a test runs. They are real files
    in the test's own data folder, so no isolation is lost by allowing them.
    """
    original = TransactionTestCase.ensure_connection_patch_method.__func__

    def patch_method(cls):
        # Called when a test case sets up, with database access already unblocked.
        real_ensure_connection = BaseDatabaseWrapper.ensure_connection
        guarded = original(cls)

        def ensure_connection(self, *args, **kwargs):
            if userdb.is_user_alias(self.alias):
                return real_ensure_connection(self, *args, **kwargs)
            return guarded(self, *args, **kwargs)

        return ensure_connection

    TransactionTestCase.ensure_connection_patch_method = classmethod(patch_method)
    yield
    TransactionTestCase.ensure_connection_patch_method = classmethod(original)


def _central_pool():
    """The PostgreSQL connection pool of the central database, if there is one."""
    from django.db import connections

    central = connections["default"]
    if central.vendor != "postgresql" or not central.settings_dict["OPTIONS"].get("pool"):
        return None, central
    return central.pool, central


@pytest.fixture(autouse=True)
def _pool_slots_kept_by_test_threads_are_freed():
    """Django's test client keeps a request from closing its connection (it disconnects
    ``close_old_connections``), so a test that sends requests from threads of its own
    ends with their connections checked out of the pool for good: the threads are gone,
    but the pool still counts them, and a few such tests exhaust it. The app's own
    threads give theirs back (each closes its connections when it ends; daphne's
    requests do at the end of each), so only the tests need this: the pool is started
    afresh after a test that left slots taken."""
    yield
    pool, central = _central_pool()
    if pool is None:
        return
    stats = pool.get_stats()
    mine = 1 if central.connection is not None else 0  # this thread's, kept for the next test
    if stats.get("pool_size", 0) - stats.get("pool_available", 0) > mine:
        central.close_pool()


@pytest.fixture(autouse=True, scope="session")
def _central_pool_closed_before_the_test_database_goes(django_db_setup):
    """Idle pooled connections would keep PostgreSQL from dropping the test database."""
    yield
    pool, central = _central_pool()
    if pool is not None:
        central.close()
        central.close_pool()


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
    # No background retry loop: tests push and retry explicitly.
    settings.SYNC_RETRY_INTERVAL = 0
    # Test users need no slow password hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    userdb.forget_all()
    yield path
    userdb.forget_all()


def _make_user(django_user_model, username, **extra):
    return django_user_model.objects.create_user(
        username=username, password="pw-" + username, **extra
    )


@pytest.fixture
def alice(db, django_user_model):
    return _make_user(django_user_model, "alice")


@pytest.fixture
def bob(db, django_user_model):
    return _make_user(django_user_model, "bob")


@pytest.fixture
def staff(db, django_user_model):
    """A staff user with no permissions: a test grants the ones it is about."""
    return _make_user(django_user_model, "staff", is_staff=True)


@pytest.fixture
def alice_client(alice):
    return client_for(alice)


@pytest.fixture
def bob_client(bob):
    return client_for(bob)


@pytest.fixture
def staff_client(staff):
    return client_for(staff)


@pytest.fixture(scope="session")
def game_clip_path(tmp_path_factory):
    """A small synthetic game clip (320x180, 2 s, 30 fps), generated once per run."""
    from projects.synthetic import write_game_clip

    path = tmp_path_factory.mktemp("clips") / "game.mp4"
    write_game_clip(path, width=320, height=180, fps=30, seconds=2.0)
    return path
