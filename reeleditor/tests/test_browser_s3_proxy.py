"""The browser tests' S3 proxy: passes S3 traffic through, fails for real, recovers."""

import socket
import uuid

import boto3
import botocore.config
import pytest
from botocore.exceptions import EndpointConnectionError

from reeleditor.tests.browser import S3Proxy


@pytest.fixture
def proxy(moto_endpoint):
    proxy = S3Proxy(moto_endpoint).start()
    yield proxy
    proxy.stop()


def _client(url):
    config = botocore.config.Config(
        connect_timeout=1, read_timeout=2, retries={"max_attempts": 0, "mode": "standard"}
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=url, region_name="us-east-1", config=config
    )


def test_passes_requests_through_fails_and_recovers(proxy):
    s3 = _client(proxy.url)
    bucket = f"proxy-{uuid.uuid4().hex}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a", Body=b"x" * 300_000)
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"x" * 300_000

    proxy.fail()
    assert proxy.failing
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
    with pytest.raises(EndpointConnectionError):
        s3.get_object(Bucket=bucket, Key="a")

    proxy.recover()
    assert not proxy.failing
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"x" * 300_000


def test_fail_cuts_open_connections(proxy):
    held = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert held.recv(1024).startswith(b"HTTP/1.1")  # an open keep-alive connection
    proxy.fail()
    try:
        # The rest of the answer, if any, then the end: no timeout (socket.timeout).
        while held.recv(65536):
            pass
    except ConnectionResetError:
        pass
    finally:
        held.close()
