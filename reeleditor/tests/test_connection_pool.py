"""On PostgreSQL each web process keeps a pool of open connections: a request takes one
and gives it back, instead of connecting anew (4-6 ms each on localhost).

Runs where the central database is PostgreSQL (``make test-postgres``); on SQLite there
is nothing to pool, connecting is opening a file.
"""

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.db.backends.signals import connection_created

from reeleditor.testing import AsgiSession

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the pool is PostgreSQL's"
)


@pytest.mark.django_db(transaction=True)  # no test transaction holding one connection open
def test_requests_reuse_the_pools_connections_instead_of_connecting(django_user_model):
    from reeleditor.asgi import application

    user = django_user_model.objects.create_user("pooled", password="pw-for-tests-1")
    # Through the ASGI application as daphne calls it: Django's test client would keep
    # the connection from being closed between requests.
    browser = AsgiSession(user)
    connection.close()
    servers = []

    def seen(sender, connection, **kwargs):
        if connection.alias == "default":
            servers.append(connection.connection.info.backend_pid)

    connection_created.connect(seen)
    try:
        for _ in range(12):
            response = async_to_sync(browser.request)(application, "GET", "/api/projects")
            assert response.status == 200
    finally:
        connection_created.disconnect(seen)
    # Django closes the central connection at the end of each request (each runs in a
    # thread of its own); with the pool, closing gives it back, and the next request
    # takes an open one.
    assert len(servers) >= 12, servers  # each request did take a connection
    assert len(set(servers)) <= 3, servers  # from a few kept open, not 12 new backends
