"""Snapshot store fixtures: a real S3 endpoint (moto's server), a local store, outages.

A pytest plugin (listed in the root ``conftest.py``): these fixtures serve every app's
tests. ``store`` runs a test once on each store.

moto runs as its own process speaking real HTTP, so the S3 code under test goes through
boto3's full request path (signing, retries, timeouts, error parsing), and an outage is
a real refused connection rather than a mock.
"""

import contextlib
import os
import uuid

import boto3
import pytest

from reeleditor.localcluster.processes import MotoServer, ServiceFailed, free_port
from reeleditor.settings import s3_media_storage
from syncstore.stores import get_store

_DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Real credentials or profiles from the developer's shell must not reach the tests.
_CLEARED_AWS_ENV = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")
_MOTO_START_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """URL of a moto S3 server (``http://127.0.0.1:<port>``) shared by the whole run.

    Dummy AWS credentials are in the environment for the session. Tests must not rely on
    an empty server: use a fresh bucket each (``s3_store`` does).
    """
    saved = {name: os.environ.get(name) for name in (*_DUMMY_AWS_ENV, *_CLEARED_AWS_ENV)}
    os.environ.update(_DUMMY_AWS_ENV)
    for name in _CLEARED_AWS_ENV:
        os.environ.pop(name, None)
    log_dir = tmp_path_factory.mktemp("moto")
    try:
        for attempt in range(3):
            server = MotoServer(log_dir, name="moto_server")
            try:
                server.start(timeout=_MOTO_START_TIMEOUT)
                break
            except ServiceFailed:
                # The free port can be taken between choosing it and binding it.
                if attempt == 2:
                    raise
        try:
            yield server.url
        finally:
            server.stop()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def moto_client(moto_endpoint):
    """A plain boto3 S3 client on the moto server, to set up or inspect buckets directly."""
    return boto3.session.Session().client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def s3_store(settings, moto_endpoint, moto_client):
    """The S3 snapshot store on a new, empty moto bucket, configured through settings.

    Code under test that calls ``get_store()`` gets this same store.
    """
    bucket = f"test-{uuid.uuid4().hex}"
    moto_client.create_bucket(Bucket=bucket)
    settings.S3_BUCKET = bucket
    settings.S3_ENDPOINT_URL = moto_endpoint
    settings.S3_REGION = "us-east-1"
    return get_store()


@pytest.fixture
def s3_media(settings, s3_store):
    """Media files on S3 as well, in the same moto bucket, as production keeps them."""
    media = s3_media_storage(settings.S3_BUCKET, settings.S3_ENDPOINT_URL, settings.S3_REGION)
    settings.STORAGES = {**settings.STORAGES, "default": media}
    return s3_store


@pytest.fixture
def s3_outage(settings):
    """A context manager factory: inside ``with s3_outage():`` S3 is unreachable.

    It points ``S3_ENDPOINT_URL`` at a closed local port, so every request fails with a
    real refused connection, and shortens the timeouts so failures come quickly. Code
    that calls ``get_store()`` inside the block gets the unreachable store (also given
    by ``as``); store objects obtained before the block still reach the live server.
    """

    @contextlib.contextmanager
    def outage():
        names = (
            "S3_BUCKET",
            "S3_ENDPOINT_URL",
            "SNAPSHOT_CONNECT_TIMEOUT",
            "SNAPSHOT_READ_TIMEOUT",
        )
        missing = object()
        saved = {name: getattr(settings, name, missing) for name in names}
        settings.S3_BUCKET = settings.S3_BUCKET or f"outage-{uuid.uuid4().hex}"
        # Nothing listens on a port we just bound and released.
        settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
        settings.SNAPSHOT_CONNECT_TIMEOUT = 1
        settings.SNAPSHOT_READ_TIMEOUT = 2
        try:
            yield get_store()
        finally:
            for name, value in saved.items():
                if value is missing:
                    delattr(settings, name)
                else:
                    setattr(settings, name, value)

    return outage


@pytest.fixture
def local_store(settings, tmp_path):
    """A local snapshot store in this test's own folder, configured through settings."""
    settings.S3_BUCKET = ""
    settings.SNAPSHOT_LOCAL_DIR = tmp_path / "snapshots"
    return get_store()


@pytest.fixture(params=["s3", "local"])
def store(request):
    """Each test runs against moto's S3 endpoint and against the local-folder store."""
    return request.getfixturevalue("s3_store" if request.param == "s3" else "local_store")
