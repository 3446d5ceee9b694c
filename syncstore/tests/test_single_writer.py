"""One writer per user at a time, through the real ASGI app.

The lease lives in the central database whatever else is configured: with Redis set
(Channels and Celery) it must hold just the same.
"""

import asyncio
import threading
import time

import pytest
from django.db.models.signals import post_save
from prometheus_client.core import REGISTRY

from projects.models import Project
from reeleditor.asgi import application
from reeleditor.testing import AsgiSession
from syncstore.models import SyncState

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def lease_waiters() -> float:
    return REGISTRY.get_sample_value("reeleditor_lease_waiters") or 0


async def until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.01)


@pytest.fixture(params=["embedded", "redis"])
def lease_backend(request, settings):
    # REDIS_URL no longer changes where the lease lives; both must behave the same.
    settings.REDIS_URL = "redis://127.0.0.1:6379/15" if request.param == "redis" else ""
    return request.param


async def test_a_second_write_waits_for_the_first_while_reads_go_on(
    lease_backend, local_store, django_user_model
):
    alice = await django_user_model.objects.acreate(username="alice")
    session = await asyncio.to_thread(AsgiSession, alice)
    entered, release = threading.Event(), threading.Event()

    def hold(sender, instance, **kwargs):
        if instance.name == "first":
            entered.set()
            assert release.wait(20)

    post_save.connect(hold, sender=Project, weak=False)
    try:
        first = asyncio.create_task(
            session.request(
                application, "POST", "/api/projects", {"name": "first", "aspect_ratio": "9:16"}
            )
        )
        assert await asyncio.to_thread(entered.wait, 20)
        second = asyncio.create_task(
            session.request(
                application, "POST", "/api/projects", {"name": "second", "aspect_ratio": "9:16"}
            )
        )
        read = await session.request(application, "GET", "/api/projects")
        assert read.status == 200  # reads take no lease
        await until(lambda: lease_waiters() >= 1)  # the second writer is at the lease
        assert not second.done(), "a second writer ran while the first held the lease"
        release.set()
        responses = [await first, await second]
    finally:
        post_save.disconnect(hold, sender=Project)

    assert [r.status for r in responses] == [201, 201]
    assert [r.headers["x-sync-status"] for r in responses] == ["ok", "ok"]
    row = await SyncState.objects.aget(user=alice)
    assert row.version == 2
