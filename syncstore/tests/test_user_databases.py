import sqlite3
import threading

import pytest
from django.db import connections

from projects.models import Project
from syncstore import userdb
from syncstore.binding import NoUserBound, bound_to_user, current_binding, is_bound

pytestmark = pytest.mark.django_db


def _tables(path):
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _applied(path):
    with sqlite3.connect(path) as conn:
        return {
            (app, name) for app, name in conn.execute("SELECT app, name FROM django_migrations")
        }


def test_a_new_users_first_request_creates_a_migrated_database(alice_client, alice):
    path = userdb.database_path(alice.pk)
    assert not path.exists()

    response = alice_client.get("/api/projects")

    assert response.status_code == 200
    assert response.json() == {"projects": []}
    assert path.exists()
    assert {"projects_project", "projects_clip", "projects_workingvideo"} <= _tables(path)
    assert ("projects", "0001_initial") in _applied(path)
    # Only the user's own app lives there: no auth or session tables.
    assert "auth_user" not in _tables(path)
    assert "django_session" not in _tables(path)


def test_per_user_rows_never_reach_the_central_database(alice_client):
    alice_client.post(
        "/api/projects", {"name": "x", "aspect_ratio": "9:16"}, content_type="application/json"
    )
    with connections["default"].cursor() as cursor:
        tables = connections["default"].introspection.table_names(cursor)
    assert "projects_project" not in tables


def test_using_a_user_model_with_no_user_bound_fails_loudly():
    assert not is_bound()
    with pytest.raises(NoUserBound):
        Project.objects.count()
    with pytest.raises(NoUserBound):
        Project.objects.create(name="nowhere", aspect_ratio="9:16")
    with pytest.raises(NoUserBound):
        current_binding()


def test_a_new_thread_starts_unbound(alice):
    errors = []

    def worker():
        try:
            Project.objects.count()
        except NoUserBound as exc:
            errors.append(exc)

    with bound_to_user(alice.pk):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert len(errors) == 1


def test_nested_bindings_route_to_the_innermost_user(alice, bob):
    with bound_to_user(alice.pk):
        Project.objects.create(name="alice's", aspect_ratio="9:16")
        with bound_to_user(bob.pk):
            Project.objects.create(name="bob's", aspect_ratio="9:16")
            assert current_binding().user_id == bob.pk
        # Back to alice, with her connection still usable.
        assert list(Project.objects.values_list("name", flat=True)) == ["alice's"]
    with bound_to_user(bob.pk):
        assert list(Project.objects.values_list("name", flat=True)) == ["bob's"]


def test_rebinding_the_same_user_inside_a_transaction_keeps_the_connection(alice):
    from django.db import transaction

    with bound_to_user(alice.pk) as outer, transaction.atomic(using=outer.alias):
        Project.objects.create(name="first", aspect_ratio="9:16")
        with bound_to_user(alice.pk):
            Project.objects.create(name="second", aspect_ratio="9:16")
        # The inner exit must not have closed the connection under the open transaction.
        Project.objects.create(name="third", aspect_ratio="9:16")
    with bound_to_user(alice.pk):
        assert Project.objects.count() == 3


def test_an_existing_database_gets_missing_migrations_when_opened(alice):
    path = userdb.database_path(alice.pk)
    path.parent.mkdir(parents=True)
    sqlite3.connect(path).close()  # a database from before any migration: empty

    with bound_to_user(alice.pk):
        Project.objects.create(name="after upgrade", aspect_ratio="1:1")
        assert Project.objects.count() == 1
    assert ("projects", "0001_initial") in _applied(path)


def test_racing_first_requests_create_exactly_one_database(alice):
    barrier = threading.Barrier(6)
    errors = []

    def first_request():
        try:
            barrier.wait()
            with bound_to_user(alice.pk):
                Project.objects.create(name=threading.current_thread().name, aspect_ratio="9:16")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=first_request, name=f"t{i}") for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with bound_to_user(alice.pk):
        assert Project.objects.count() == 6
    leftovers = [p.name for p in userdb.user_dir(alice.pk).iterdir() if p.name.startswith(".")]
    assert [n for n in leftovers if n.endswith(".new")] == []


def test_registering_aliases_while_other_threads_iterate_them_is_safe(django_user_model):
    # Django walks connections.settings on every request; registering a user's alias
    # while that happens once raised "dictionary changed size during iteration".
    users = [django_user_model.objects.create(username=f"u{i}") for i in range(24)]
    stop = threading.Event()
    errors = []

    def iterate_settings():
        while not stop.is_set():
            try:
                for _alias, _cfg in connections.settings.items():
                    pass
            except RuntimeError as exc:
                errors.append(exc)

    def open_users(chunk):
        try:
            for user in chunk:
                with bound_to_user(user.pk):
                    Project.objects.exists()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    walker = threading.Thread(target=iterate_settings)
    walker.start()
    workers = [threading.Thread(target=open_users, args=(users[i::4],)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    walker.join()
    assert errors == []


def test_idle_aliases_are_evicted_beyond_the_limit(settings, django_user_model):
    settings.USER_DATABASE_MAX_OPEN = 3
    users = [django_user_model.objects.create(username=f"u{i}") for i in range(6)]
    for user in users:
        with bound_to_user(user.pk):
            Project.objects.create(name=f"p{user.pk}", aspect_ratio="9:16")
    assert len(userdb.open_aliases()) <= 3
    assert len([a for a in connections.settings if userdb.is_user_alias(a)]) <= 3
    # An evicted user's data is still there when they come back.
    with bound_to_user(users[0].pk):
        assert list(Project.objects.values_list("name", flat=True)) == [f"p{users[0].pk}"]


def test_an_alias_in_use_is_not_evicted(settings, django_user_model):
    settings.USER_DATABASE_MAX_OPEN = 1
    first, second = (django_user_model.objects.create(username=n) for n in ("a", "b"))
    with bound_to_user(first.pk) as binding:
        with bound_to_user(second.pk):
            Project.objects.exists()
        assert binding.alias in connections.settings
        Project.objects.create(name="still here", aspect_ratio="9:16")


def test_threads_opening_an_old_database_wait_for_its_migration(alice):
    path = userdb.database_path(alice.pk)
    path.parent.mkdir(parents=True)
    sqlite3.connect(path).close()
    barrier = threading.Barrier(5)
    errors = []

    def open_and_query():
        try:
            barrier.wait()
            with bound_to_user(alice.pk):
                Project.objects.count()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_query) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ("projects", "0001_initial") in _applied(path)
