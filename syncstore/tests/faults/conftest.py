"""Fixtures of the fault-injection suite: real app processes, one central database, one
bucket behind a proxy that can cut requests.

- ``central_database``: a migrated, empty central database for this test, as a
  ``DATABASE_URL``. SQLite (a file in ``tmp_path``) unless parametrized indirectly::

      @pytest.mark.parametrize("central_database", ["sqlite", "postgres"], indirect=True)

  Each kind is migrated once per run (a template); every test gets a copy of it (a
  file copy, or ``CREATE DATABASE ... TEMPLATE``), dropped afterwards.
- ``s3_fault_proxy``: an ``S3FaultProxy`` in front of the session's moto server, with a
  new bucket (``.bucket``), ``.url`` for the apps, and the faults (``cut``, ``cut_all``,
  ``fail_next``, ``heal``, ``counts``...). Healed after the test, then stopped.
- ``app_instances``: a factory of ``AppInstance`` processes on that database and bucket;
  ``app_instances("a")`` starts one and waits until it answers, ``app_instances.many("a",
  "b")`` starts several side by side, ``app_instances.create_user(name, password)``
  makes a user in the central database. All are killed after the test.

Every test in this folder is marked ``fault``; a failing one gets the log tail of each
instance it started in its report.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from . import postgres
from .instances import AppInstance, create_user, create_users, migrate
from .s3proxy import S3FaultProxy

CENTRAL_DATABASES = ("sqlite", "postgres")
_FAULTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    marker = pytest.mark.fault
    for item in items:
        if _FAULTS_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for instance in getattr(item, "_fault_instances", ()):
            report.sections.append(
                (f"app instance {instance.name} log (tail)", instance.log_tail())
            )
    return report


# --- Central database ------------------------------------------------------------------


class _Templates:
    """Migrated central databases, one per kind, made on first use in this run."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.urls: dict[str, str] = {}
        self.problems: dict[str, str] = {}

    def get(self, kind: str) -> str:
        if kind in self.problems:
            pytest.fail(self.problems[kind], pytrace=False)
        if kind not in self.urls:
            if kind == "sqlite":
                path = self.tmp_path_factory.mktemp("central-template") / "central.sqlite3"
                url = f"sqlite:///{path}"
            elif kind == "postgres":
                reason = postgres.unavailable_reason()
                if reason:
                    self.problems[kind] = reason
                    pytest.fail(reason, pytrace=False)
                postgres.drop_stale_databases()
                url = postgres.fresh_database_url(prefix=f"{postgres.PREFIX}_tpl")
            else:
                raise ValueError(f"central_database is one of {CENTRAL_DATABASES}, not {kind!r}")
            migrate(url)
            self.urls[kind] = url
        return self.urls[kind]

    def close(self) -> None:
        url = self.urls.get("postgres")
        if url:
            postgres.drop_database(url)


@pytest.fixture(scope="session")
def _central_templates(tmp_path_factory):
    templates = _Templates(tmp_path_factory)
    yield templates
    templates.close()


@pytest.fixture
def central_database(request, tmp_path, _central_templates) -> str:
    """A migrated, empty central database for this test: its ``DATABASE_URL``."""
    kind = getattr(request, "param", "sqlite")
    template = _central_templates.get(kind)
    if kind == "sqlite":
        source = Path(template.removeprefix("sqlite:///"))
        target = tmp_path / "central.sqlite3"
        for suffix in ("", "-wal"):  # the migrate process closed it: no -wal, normally
            if source.with_name(source.name + suffix).exists():
                shutil.copyfile(
                    source.with_name(source.name + suffix), target.with_name(target.name + suffix)
                )
        yield f"sqlite:///{target}"
        return
    url = postgres.fresh_database_url(template=template)
    try:
        yield url
    finally:
        postgres.drop_database(url)


# --- Object store ----------------------------------------------------------------------


@pytest.fixture
def s3_fault_proxy(moto_endpoint, moto_client):
    """A fault proxy in front of moto with a fresh bucket of its own (``.bucket``)."""
    bucket = f"fault-{uuid.uuid4().hex}"
    moto_client.create_bucket(Bucket=bucket)
    proxy = S3FaultProxy(moto_endpoint).start()
    proxy.bucket = bucket
    try:
        yield proxy
    finally:
        proxy.heal()
        proxy.stop()


# --- App processes ---------------------------------------------------------------------


class AppInstances:
    """Starts ``AppInstance`` processes for one test; see the module's docstring."""

    def __init__(self, request, tmp_path: Path, database_url: str, proxy: S3FaultProxy):
        self.request = request
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.proxy = proxy
        self.started: list[AppInstance] = []
        self.user_ids: dict[str, int] = {}  # users made through this factory

    def __call__(self, name: str = "a", *, start: bool = True, **options) -> AppInstance:
        """A new instance ``name``, started unless ``start=False``.

        ``options``: ``database_url`` and ``proxy`` (default: the test's), ``bucket``,
        ``sync_retry_interval`` (default 0: no periodic retry), ``extra_env``,
        ``processes`` (several daphne processes on one port and data folder).
        """
        instance = self._make(name, **options)
        if start:
            instance.start()
        return instance

    def many(self, *names: str, users=(), **options) -> list[AppInstance]:
        """Start several instances side by side (faster than one after the other).

        ``users`` (``(username, password)`` each) are created in the central database
        while the processes start; their ids land in ``self.user_ids``.
        """
        instances = [self._make(name, **options) for name in names]
        for instance in instances:
            instance.launch()
        if users:
            self.create_users(*users)
        for instance in instances:
            try:
                instance.wait_until_up()
            except RuntimeError:
                if "Address already in use" not in instance.log_tail(3000):
                    raise
                instance.port = None
                instance.start()
        return instances

    def _make(
        self,
        name: str,
        *,
        database_url: str | None = None,
        proxy: S3FaultProxy | None = None,
        bucket: str | None = None,
        sync_retry_interval: int = 0,
        extra_env: dict[str, str] | None = None,
        processes: int = 1,
    ) -> AppInstance:
        if any(instance.name == name for instance in self.started):
            raise ValueError(f"an instance named {name!r} already exists in this test")
        proxy = proxy or self.proxy
        instance = AppInstance(
            name,
            self.tmp_path / f"instance-{name}",
            database_url=database_url or self.database_url,
            s3_endpoint_url=proxy.url,
            bucket=bucket or proxy.bucket,
            sync_retry_interval=sync_retry_interval,
            extra_env=extra_env,
            processes=processes,
        )
        self.started.append(instance)
        self.request.node._fault_instances = list(self.started)
        return instance

    def create_user(self, username: str, password: str, staff: bool = False) -> int:
        """A user in the test's central database; returns its id."""
        user_id = create_user(self.database_url, username, password, staff)
        self.user_ids[username] = user_id
        return user_id

    def create_users(self, *users) -> dict[str, int]:
        """Several users in one ``manage.py`` run: ``(username, password)`` each."""
        ids = create_users(self.database_url, *users)
        self.user_ids.update(ids)
        return ids

    def stop_all(self) -> None:
        for instance in self.started:
            instance.kill()


@pytest.fixture
def app_instances(request, tmp_path, central_database, s3_fault_proxy):
    """A factory of app processes on the test's central database and fault proxy."""
    instances = AppInstances(request, tmp_path, central_database, s3_fault_proxy)
    try:
        yield instances
    finally:
        instances.stop_all()
