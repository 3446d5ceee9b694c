"""Two requests in flight at once on one event loop, through the real ASGI application.

The product we replace kept per-request state in ``threading.local()``: a short read
arriving while a long write was running reset the write's state. Here a long write by
alice is held open in the middle of its view while a read by bob runs to completion;
each must see only its own user and its own binding from start to end.
"""

import asyncio
import threading

import pytest
from django.db.models.signals import post_save

from projects.models import Project
from reeleditor.asgi import application
from reeleditor.testing import AsgiSession
from syncstore.binding import bound_to_user, current_binding

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class HeldWrite:
    """Holds the request that saves a project named ``name`` until released."""

    def __init__(self, name):
        self.name = name
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen = []

    def __call__(self, sender, instance, created, **kwargs):
        if instance.name != self.name:
            return
        self.seen.append(current_binding())
        self.entered.set()
        assert self.release.wait(timeout=20), "the test never released the write"
        self.seen.append(current_binding())


async def test_a_long_write_and_a_concurrent_read_keep_their_own_user(django_user_model):
    alice = await django_user_model.objects.acreate(username="alice")
    bob = await django_user_model.objects.acreate(username="bob")
    await asyncio.to_thread(_create_project, bob, "Bob's match")
    alice_session = await asyncio.to_thread(AsgiSession, alice)
    bob_session = await asyncio.to_thread(AsgiSession, bob)

    held = HeldWrite("Alice's long write")
    post_save.connect(held, sender=Project, weak=False)
    try:
        write = asyncio.create_task(
            alice_session.request(
                application, "POST", "/api/projects", {"name": held.name, "aspect_ratio": "9:16"}
            )
        )
        assert await asyncio.to_thread(held.entered.wait, 20), "the write never reached save()"

        # The write is now parked inside its view. Bob's read runs start to finish.
        read = await bob_session.request(application, "GET", "/api/projects")
        assert not write.done()
        held.release.set()
        written = await write
    finally:
        post_save.disconnect(held, sender=Project)

    assert read.status == 200
    assert [p["name"] for p in read.json()["projects"]] == ["Bob's match"]

    assert written.status == 201, written.body
    assert written.json()["name"] == "Alice's long write"
    # Before and after bob's request, alice's write saw alice's binding.
    assert [(b.user_id, b.alias) for b in held.seen] == [
        (alice.pk, f"userdb_{alice.pk}"),
        (alice.pk, f"userdb_{alice.pk}"),
    ]

    assert await asyncio.to_thread(_project_names, alice) == ["Alice's long write"]
    assert await asyncio.to_thread(_project_names, bob) == ["Bob's match"]


async def test_many_interleaved_requests_never_cross_users(django_user_model):
    users = [await django_user_model.objects.acreate(username=f"user{i}") for i in range(4)]
    sessions = [await asyncio.to_thread(AsgiSession, user) for user in users]

    async def create_and_list(session, index, round_):
        name = f"user{index}-project{round_}"
        created = await session.request(
            application, "POST", "/api/projects", {"name": name, "aspect_ratio": "1:1"}
        )
        assert created.status == 201, created.body
        listed = await session.request(application, "GET", "/api/projects")
        return index, {p["name"] for p in listed.json()["projects"]}

    results = await asyncio.gather(
        *(create_and_list(s, i, r) for r in range(3) for i, s in enumerate(sessions))
    )
    for index, names in results:
        assert names, "a user saw no projects at all"
        assert all(name.startswith(f"user{index}-") for name in names), names

    for index, user in enumerate(users):
        names = await asyncio.to_thread(_project_names, user)
        assert sorted(names) == [f"user{index}-project{r}" for r in range(3)]


def _create_project(user, name):
    with bound_to_user(user.pk):
        Project.objects.create(name=name, aspect_ratio="9:16")


def _project_names(user):
    with bound_to_user(user.pk):
        return list(Project.objects.values_list("name", flat=True))
