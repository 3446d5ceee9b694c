"""The snapshot store contract, run against both backends (a folder and moto's S3)."""

import os
import threading
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ReadTimeoutError

from syncstore import stores
from syncstore.stores import (
    LocalSnapshotStore,
    S3SnapshotStore,
    SnapshotMissing,
    StoreError,
    clear_store_cache,
    get_store,
)


def snapshot_key(user_id=12, version=3):
    return f"snapshots/{user_id}/{version:010d}-{uuid.uuid4().hex}.sqlite3.z"


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "upload.sqlite3.z"
    path.write_bytes(os.urandom(1024 * 1024 + 123))
    return path


def put_bytes(store, key, data, tmp_path):
    path = tmp_path / f"src-{uuid.uuid4().hex}"
    path.write_bytes(data)
    store.put_file(key, path)


# --- The contract, on both stores ---------------------------------------------------


def test_round_trip_keeps_the_bytes(store, payload, tmp_path):
    key = snapshot_key()
    store.put_file(key, payload)
    dest = tmp_path / "out" / "copy.sqlite3.z"
    dest.parent.mkdir()

    store.get_file(key, dest)

    assert dest.read_bytes() == payload.read_bytes()
    assert store.exists(key)
    # Only the downloaded file: no temporary file left beside it.
    assert os.listdir(dest.parent) == ["copy.sqlite3.z"]


def test_put_overwrites_and_get_replaces_dest(store, tmp_path):
    key = snapshot_key()
    put_bytes(store, key, b"first", tmp_path)
    put_bytes(store, key, b"second", tmp_path)
    dest = tmp_path / "dest"
    dest.write_bytes(b"old content")

    store.get_file(key, dest)

    assert dest.read_bytes() == b"second"


def test_get_of_a_missing_key_is_snapshot_missing(store, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(SnapshotMissing):
        store.get_file(snapshot_key(), dest)
    assert not dest.exists()
    assert not store.exists(snapshot_key())


def test_snapshot_missing_is_not_a_store_error():
    # Callers catch StoreError for "retry later": "not found" must never fall into it.
    assert not issubclass(SnapshotMissing, StoreError)
    assert not issubclass(StoreError, SnapshotMissing)


def test_delete(store, tmp_path):
    key = snapshot_key()
    put_bytes(store, key, b"x", tmp_path)

    store.delete(key)

    assert not store.exists(key)
    with pytest.raises(SnapshotMissing):
        store.get_file(key, tmp_path / "dest")


def test_delete_of_a_missing_key_is_fine(store):
    store.delete(snapshot_key())


def test_list_keys_returns_the_prefix_sorted(store, tmp_path):
    keys = [
        "snapshots/1/0000000002-b.sqlite3.z",
        "snapshots/1/0000000001-a.sqlite3.z",
        "snapshots/12/0000000001-c.sqlite3.z",
        "conflicts/1/0000000001-d.sqlite3.z",
    ]
    for key in keys:
        put_bytes(store, key, b"x", tmp_path)

    assert store.list_keys("snapshots/1/") == [
        "snapshots/1/0000000001-a.sqlite3.z",
        "snapshots/1/0000000002-b.sqlite3.z",
    ]
    # A string prefix, as in S3, on both stores.
    assert store.list_keys("snapshots/1") == [
        "snapshots/1/0000000001-a.sqlite3.z",
        "snapshots/1/0000000002-b.sqlite3.z",
        "snapshots/12/0000000001-c.sqlite3.z",
    ]
    assert store.list_keys("snapshots/1/0000000002") == ["snapshots/1/0000000002-b.sqlite3.z"]
    assert store.list_keys("conflicts/") == ["conflicts/1/0000000001-d.sqlite3.z"]
    assert store.list_keys("") == sorted(keys)
    assert store.list_keys("nothing/") == []


def test_list_keys_follows_every_page(s3_store, tmp_path, monkeypatch):
    # S3 returns at most 1,000 keys a page; small pages show the same thing quickly.
    keys = [f"snapshots/7/{i:010d}-x.sqlite3.z" for i in range(7)]
    for key in keys:
        put_bytes(s3_store, key, b"", tmp_path)
    real_get_paginator = s3_store.client.get_paginator
    pages = []

    def small_pages(name):
        paginator = real_get_paginator(name)
        real_paginate = paginator.paginate

        def paginate(**kwargs):
            for page in real_paginate(**kwargs, PaginationConfig={"PageSize": 2}):
                pages.append(page)
                yield page

        paginator.paginate = paginate
        return paginator

    monkeypatch.setattr(s3_store.client, "get_paginator", small_pages)
    assert s3_store.list_keys("snapshots/7/") == keys
    assert len(pages) == 4


INVALID_KEYS = ["", "../x", "/abs", "a//b", "a/../b", "a/./b", "a/", "..", "a b", "a\\b", "é"]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused(store, key, tmp_path, payload):
    with pytest.raises(ValueError):
        store.put_file(key, payload)
    with pytest.raises(ValueError):
        store.get_file(key, tmp_path / "dest")
    with pytest.raises(ValueError):
        store.delete(key)
    with pytest.raises(ValueError):
        store.exists(key)
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//", "a/../"])
def test_invalid_list_prefixes_are_refused(store, prefix):
    with pytest.raises(ValueError):
        store.list_keys(prefix)


def test_a_failed_download_leaves_dest_untouched(store, tmp_path, monkeypatch):
    key = snapshot_key()
    put_bytes(store, key, os.urandom(300_000), tmp_path)
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    dest = dest_dir / "db.sqlite3.z"
    dest.write_bytes(b"previous")

    def copy_half_then_fail(source, target):
        target.write(source.read(100_000))
        # What a cut connection raises mid-body (botocore) or a failing disk (local).
        if store.name == "s3":
            raise ReadTimeoutError(endpoint_url="http://s3.example")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(stores, "_copy_stream", copy_half_then_fail)
    with pytest.raises(StoreError):
        store.get_file(key, dest)

    assert dest.read_bytes() == b"previous"
    assert os.listdir(dest_dir) == ["db.sqlite3.z"]


def test_missing_key_leaves_no_file_at_dest(store, tmp_path):
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    with pytest.raises(SnapshotMissing):
        store.get_file(snapshot_key(), dest_dir / "db.sqlite3.z")
    assert os.listdir(dest_dir) == []


def test_put_of_a_missing_source_is_a_store_error(store, tmp_path):
    with pytest.raises(StoreError):
        store.put_file(snapshot_key(), tmp_path / "no-such-file")


# --- Local store specifics ----------------------------------------------------------


def test_local_files_live_under_the_root(local_store, tmp_path):
    key = "snapshots/12/0000000001-abc.sqlite3.z"
    put_bytes(local_store, key, b"data", tmp_path)

    path = tmp_path / "snapshots" / "snapshots" / "12" / "0000000001-abc.sqlite3.z"
    assert path.read_bytes() == b"data"
    # No temporary file left behind by the atomic write.
    assert os.listdir(path.parent) == [path.name]


def test_local_listing_ignores_leftover_temporary_files(local_store, tmp_path):
    key = "snapshots/12/0000000001-abc.sqlite3.z"
    put_bytes(local_store, key, b"data", tmp_path)
    folder = local_store.root / "snapshots" / "12"
    (folder / f".0000000002-def.sqlite3.z.{uuid.uuid4().hex}~tmp").write_bytes(b"half")

    assert local_store.list_keys("snapshots/") == [key]


def test_local_directory_is_not_a_snapshot(local_store, tmp_path):
    put_bytes(local_store, "snapshots/12/x", b"data", tmp_path)
    assert not local_store.exists("snapshots/12")
    with pytest.raises(SnapshotMissing):
        local_store.get_file("snapshots/12", tmp_path / "dest")


def test_local_list_of_an_empty_store(local_store):
    assert local_store.list_keys("snapshots/") == []
    assert local_store.list_keys("") == []


# --- S3 specifics -------------------------------------------------------------------


def test_s3_prefix_is_invisible_to_callers(settings, s3_store, tmp_path):
    settings.SNAPSHOT_PREFIX = "env1/"
    prefixed = get_store()
    assert prefixed is not s3_store
    key = snapshot_key()
    put_bytes(prefixed, key, b"data", tmp_path)

    assert prefixed.list_keys("snapshots/") == [key]
    assert prefixed.exists(key)
    # The object really sits under the prefix: an unprefixed store sees the full name.
    assert s3_store.list_keys("") == [f"env1/{key}"]
    assert not s3_store.exists(key)

    prefixed.delete(key)
    assert s3_store.list_keys("") == []


def test_s3_missing_bucket_is_an_error_not_a_missing_snapshot(settings, s3_store, tmp_path):
    # A misnamed bucket must never make every user look like they have no snapshot.
    settings.S3_BUCKET = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    store = get_store()
    key = snapshot_key()
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.get_file(key, tmp_path / "dest")
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.exists(key)
    with pytest.raises(StoreError, match="NoSuchBucket"):
        store.list_keys("snapshots/")


def test_s3_bad_credentials_are_a_store_error(s3_store, tmp_path, monkeypatch):
    # moto accepts any credentials; a 403 from the service is what matters here.
    key = snapshot_key()
    error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
    error["ResponseMetadata"] = {"HTTPStatusCode": 403}

    def denied(**kwargs):
        raise stores.ClientError(error, "GetObject")

    monkeypatch.setattr(s3_store.client, "get_object", denied)
    with pytest.raises(StoreError, match=r"S3 get snapshots/12/.*AccessDenied \(HTTP 403\)"):
        s3_store.get_file(key, tmp_path / "dest")


OPERATIONS = {
    "put": lambda store, key, path: store.put_file(key, path),
    "get": lambda store, key, path: store.get_file(key, path.with_name("dest")),
    "list": lambda store, key, path: store.list_keys("snapshots/"),
    "exists": lambda store, key, path: store.exists(key),
    "delete": lambda store, key, path: store.delete(key),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_s3_outage_is_a_store_error(s3_store, s3_outage, operation, payload):
    key = snapshot_key()
    s3_store.put_file(key, payload)
    with s3_outage() as store:
        assert get_store() is store
        with pytest.raises(StoreError) as caught:
            OPERATIONS[operation](store, key, payload)
    assert not isinstance(caught.value, SnapshotMissing)
    assert str(caught.value).startswith(f"S3 {operation} ")
    assert "Could not connect to the endpoint URL" in str(caught.value)
    assert not payload.with_name("dest").exists()
    # Back to the live server once the outage ends.
    assert get_store() is s3_store
    assert s3_store.exists(key)


# --- Choosing the store -------------------------------------------------------------


def test_get_store_is_local_without_a_bucket(settings, data_dir):
    settings.S3_BUCKET = ""
    store = get_store()
    assert isinstance(store, LocalSnapshotStore)
    assert store.root == Path(data_dir) / "snapshots"
    assert store.name == "local"

    settings.SNAPSHOT_LOCAL_DIR = data_dir / "elsewhere"
    assert get_store().root == data_dir / "elsewhere"


def test_get_store_is_s3_with_a_bucket(settings, moto_endpoint):
    settings.S3_BUCKET = "some-bucket"
    settings.S3_ENDPOINT_URL = moto_endpoint
    settings.S3_REGION = "us-east-1"
    settings.SNAPSHOT_PREFIX = "env1"
    store = get_store()
    assert isinstance(store, S3SnapshotStore)
    assert store.name == "s3"
    assert (store.bucket, store.endpoint_url, store.prefix) == (
        "some-bucket",
        moto_endpoint,
        "env1/",
    )


def test_get_store_caches_per_settings(settings, s3_store, local_store):
    # local_store came last, so settings now describe the local store.
    assert get_store() is local_store
    assert get_store() is get_store()
    settings.S3_BUCKET = s3_store.bucket
    assert get_store() is s3_store
    settings.SNAPSHOT_READ_TIMEOUT = 7
    assert get_store() is not s3_store


def test_get_store_builds_one_store_under_concurrency(settings, moto_endpoint):
    settings.S3_BUCKET = f"test-{uuid.uuid4().hex}"
    settings.S3_ENDPOINT_URL = moto_endpoint
    clear_store_cache()
    results = []
    barrier = threading.Barrier(8)

    def pick():
        barrier.wait()
        results.append(get_store())

    threads = [threading.Thread(target=pick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_the_client_is_configured_for_s3_compatible_services(s3_store):
    config = s3_store.client.meta.config
    assert config.s3["addressing_style"] == "path"
    # botocore's max_attempts counts retries: three tries in all.
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == 3
    assert (config.connect_timeout, config.read_timeout) == (5, 30)


def test_s3_store_uses_the_moto_bucket(s3_store, moto_client, tmp_path):
    key = snapshot_key()
    put_bytes(s3_store, key, b"hello", tmp_path)
    body = moto_client.get_object(Bucket=s3_store.bucket, Key=key)["Body"].read()
    assert body == b"hello"
