"""On PostgreSQL each web process keeps a pool of open connections: a request takes one
and gives it back, instead of connecting anew (4-6 ms each on localhost).

Runs where the central database is PostgreSQL (``make test-postgres``); on SQLite there
is nothing to pool, connecting is opening a file.
"""

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import Client

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the pool is PostgreSQL's"
)


def get(application, path, cookie):
    """One GET through the ASGI application as daphne calls it (unlike the test client,
    which keeps Django from closing the connection between requests)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip

    async def call():
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(timeout=30)
        while (await communicator.receive_output(timeout=30)).get("more_body"):
            pass
        await communicator.wait(timeout=30)
        return start["status"]

    return async_to_sync(call)()


@pytest.mark.django_db(transaction=True)  # no test transaction holding one connection open
def test_requests_reuse_the_pools_connections_instead_of_connecting(django_user_model):
    from reeleditor.asgi import application

    user = django_user_model.objects.create_user("pooled", password="pw-for-tests-1")
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    connection.close()
    servers = []

    def seen(sender, connection, **kwargs):
        if connection.alias == "default":
            servers.append(connection.connection.info.backend_pid)

    connection_created.connect(seen)
    try:
        for _ in range(12):
            assert get(application, "/api/projects", cookie) == 200
    finally:
        connection_created.disconnect(seen)
    # Django closes the central connection at the end of each request (each runs in a
    # thread of its own); with the pool, closing gives it back, and the next request
    # takes an open one.
    assert len(servers) >= 12, servers  # each request did take a connection
    assert len(set(servers)) <= 3, servers  # from a few kept open, not 12 new backends
