"""The fault proxy with real boto3 against moto: it forwards, it cuts, it heals, it counts."""

import io
import threading
import time

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError

from .s3proxy import S3FaultProxy

BODY = b"snapshot bytes " * 100
# What a cut looks like to boto3: no answer (drop, hang) or a 503.
FAILED = (BotoCoreError, ClientError)


@pytest.fixture
def proxy(s3_fault_proxy):
    return s3_fault_proxy


@pytest.fixture
def s3(proxy):
    """boto3 through the proxy, without retries: one call is one request."""
    return proxy.client()


def put(client, bucket, key, body=BODY):
    client.put_object(Bucket=bucket, Key=key, Body=body)


def test_forwards_every_kind_of_request(proxy, s3):
    bucket = proxy.bucket
    put(s3, bucket, "snapshots/1/1-a.sqlite3.z")
    # A file-like body: botocore sends "Expect: 100-continue" and waits for the proxy.
    s3.put_object(Bucket=bucket, Key="media/clip.mp4", Body=io.BytesIO(b"\x00video" * 1000))
    big = bytes(range(256)) * 4096 * 6  # 6 MiB, streamed both ways
    put(s3, bucket, "media/big.bin", big)

    assert s3.get_object(Bucket=bucket, Key="snapshots/1/1-a.sqlite3.z")["Body"].read() == BODY
    assert s3.get_object(Bucket=bucket, Key="media/big.bin")["Body"].read() == big
    head = s3.head_object(Bucket=bucket, Key="media/clip.mp4")
    assert head["ContentLength"] == 6000
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="snapshots/")
    assert [item["Key"] for item in listed["Contents"]] == ["snapshots/1/1-a.sqlite3.z"]
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="snapshots/1/none")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"  # errors pass through
    s3.delete_object(Bucket=bucket, Key="media/clip.mp4")

    assert proxy.list_keys() == ["media/big.bin", "snapshots/1/1-a.sqlite3.z"]
    assert proxy.counts() == (9, 0, 9)  # seen, cut, forwarded
    assert proxy.counts("snapshots/").seen == 4  # put, get, list, missing get
    assert [r.status for r in proxy.requests("media/clip.mp4")] == [200, 200, 204]


def test_forwards_a_chunked_request_body(proxy):
    # boto3 sends Content-Length; other clients stream with Transfer-Encoding: chunked.
    parts = [b"first part;", b"x" * 70_000, b";last"]
    response = requests.put(
        f"{proxy.url}/{proxy.bucket}/media/chunked.bin", data=iter(parts), timeout=10
    )
    assert response.status_code == 200, response.text
    stored = proxy.client(direct=True).get_object(Bucket=proxy.bucket, Key="media/chunked.bin")
    assert stored["Body"].read() == b"".join(parts)


def test_cut_prefix_fails_snapshots_but_not_media_until_healed(proxy, s3):
    bucket = proxy.bucket
    put(s3, bucket, "snapshots/1/1-a.sqlite3.z")
    proxy.cut("snapshots/")

    with pytest.raises(FAILED):
        put(s3, bucket, "snapshots/1/2-b.sqlite3.z")
    with pytest.raises(FAILED):
        s3.get_object(Bucket=bucket, Key="snapshots/1/1-a.sqlite3.z")
    with pytest.raises(FAILED):  # a listing under the prefix
        s3.list_objects_v2(Bucket=bucket, Prefix="snapshots/1/")
    put(s3, bucket, "media/clip.mp4")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="media/")["KeyCount"] == 1
    assert proxy.faulty
    assert proxy.list_keys("snapshots/") == ["snapshots/1/1-a.sqlite3.z"]  # nothing written

    proxy.heal()
    assert not proxy.faulty
    put(s3, bucket, "snapshots/1/2-b.sqlite3.z")
    assert proxy.list_keys("snapshots/") == [
        "snapshots/1/1-a.sqlite3.z",
        "snapshots/1/2-b.sqlite3.z",
    ]
    snapshots = proxy.counts("snapshots/")
    assert (snapshots.seen, snapshots.cut, snapshots.forwarded) == (5, 3, 2)
    assert proxy.counts("media/").cut == 0
    assert [r.outcome for r in proxy.requests("snapshots/1/2-b")] == ["drop", "forwarded"]


def test_503_mode_answers_service_unavailable(proxy, s3):
    proxy.cut("snapshots/", mode="503")
    with pytest.raises(ClientError) as failed:
        put(s3, proxy.bucket, "snapshots/1/1-a.sqlite3.z")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert failed.value.response["Error"]["Code"] == "ServiceUnavailable"
    with pytest.raises(ClientError):  # an "Expect: 100-continue" upload never sends its body
        s3.put_object(Bucket=proxy.bucket, Key="snapshots/x", Body=io.BytesIO(BODY))
    assert [r.outcome for r in proxy.requests()] == ["503", "503"]


def test_fail_next_cuts_only_that_many(proxy, s3):
    bucket = proxy.bucket
    proxy.fail_next(2, "snapshots/")
    put(s3, bucket, "media/a")  # not matching: passes, does not count down
    for _ in range(2):
        with pytest.raises(FAILED):
            put(s3, bucket, "snapshots/1/1-a.sqlite3.z")
    put(s3, bucket, "snapshots/1/1-a.sqlite3.z")
    assert not proxy.faulty
    assert proxy.counts("snapshots/") == (3, 2, 1)

    # botocore's retries are requests too: one failure, and the retry goes through.
    retrying = proxy.client(attempts=3)
    proxy.reset_counts()
    proxy.fail_next(1, "snapshots/", mode="503")
    put(retrying, bucket, "snapshots/1/2-b.sqlite3.z")
    assert [r.outcome for r in proxy.requests()] == ["503", "forwarded"]


def test_cut_all_fails_bucket_level_requests_too(proxy, s3):
    proxy.cut_all()
    with pytest.raises(FAILED):
        s3.list_objects_v2(Bucket=proxy.bucket)
    with pytest.raises(FAILED):
        put(s3, proxy.bucket, "media/a")
    proxy.heal()
    assert s3.list_objects_v2(Bucket=proxy.bucket)["KeyCount"] == 0
    assert proxy.counts() == (3, 2, 1)


def test_hang_mode_holds_the_request_until_the_client_gives_up(proxy):
    impatient = proxy.client(read_timeout=1)
    proxy.cut("snapshots/", mode="hang")
    started = time.monotonic()
    with pytest.raises(BotoCoreError):  # a read timeout
        impatient.get_object(Bucket=proxy.bucket, Key="snapshots/1/1")
    assert 0.9 < time.monotonic() - started < 5

    # A held request is dropped by heal(), not let through.
    outcome = {}

    def patient_get():
        try:
            proxy.client(read_timeout=10).get_object(Bucket=proxy.bucket, Key="snapshots/1/2")
        except FAILED as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=patient_get)
    thread.start()
    proxy.wait_for("snapshots/1/2", cut=True)
    started = time.monotonic()
    proxy.heal()
    thread.join(5)
    assert time.monotonic() - started < 3
    assert "error" in outcome


def test_sever_breaks_a_download_in_flight(proxy, s3):
    # Large enough that the proxy is still sending when the cut comes (socket buffers).
    size = 24 * 1024 * 1024
    put(s3, proxy.bucket, "snapshots/big", b"z" * size)
    body = s3.get_object(Bucket=proxy.bucket, Key="snapshots/big")["Body"]
    assert len(body.read(1024)) == 1024
    proxy.cut("snapshots/", sever=True)
    with pytest.raises(BotoCoreError):  # the body ends short of its Content-Length
        body.read()
    assert proxy.requests("snapshots/big")[-1].outcome == "severed"


def test_modes_and_prefixes_are_checked(moto_endpoint):
    with pytest.raises(ValueError):
        S3FaultProxy(moto_endpoint, mode="explode")
    proxy = S3FaultProxy(moto_endpoint)
    with pytest.raises(ValueError):
        proxy.cut("")
    with pytest.raises(ValueError):
        proxy.fail_next(0)
