"""Two requests in flight at once on one event loop, through the real ASGI application.

The product we replace kept per-request state in ``threading.local()``: a short read
arriving while a long write was running reset the write's state, so the write's sync
was skipped. Here a long write by alice is held open in the middle of its view while
reads (bob's, and alice's own) run to completion; each must see only its own user, its
own binding and its own write tracker from start to end, and the write must still be
committed as a snapshot when it finishes.
"""

import asyncio
import contextvars
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db.models.signals import post_save

from projects.models import Project
from reeleditor.asgi import application
from reeleditor.testing import AsgiSession
from syncstore import tracking, workingcopy
from syncstore.binding import current_binding
from syncstore.tests.helpers import (
    create_project_in_copy,
    project_names,
    registry,
    snapshot_names,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class HeldWrite:
    """Holds the request that saves a project named ``name`` until released."""

    def __init__(self, name):
        self.name = name
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen = []
        self.trackers = []  # (tracker, the users it had noted), before and after the hold

    def __call__(self, sender, instance, created, **kwargs):
        if instance.name != self.name:
            return
        self._record()
        self.entered.set()
        assert self.release.wait(timeout=20), "the test never released the write"
        self._record()

    def _record(self):
        self.seen.append(current_binding())
        tracker = tracking.current_tracker()
        self.trackers.append((tracker, tracker.user_ids if tracker else None))


async def test_a_long_write_and_a_concurrent_read_keep_their_own_user(django_user_model):
    alice = await django_user_model.objects.acreate(username="alice")
    bob = await django_user_model.objects.acreate(username="bob")
    await asyncio.to_thread(create_project_in_copy, bob, "Bob's match")
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

    assert await asyncio.to_thread(project_names, alice) == ["Alice's long write"]
    assert await asyncio.to_thread(project_names, bob) == ["Bob's match"]


async def test_a_long_write_is_committed_although_reads_ran_meanwhile(
    django_user_model, s3_store, tmp_path
):
    """The seed bug, through the real ASGI app and a real S3 endpoint (moto).

    Alice's write is parked inside her view; bob reads, and alice herself reads, start to
    finish, on the same event loop. Those reads must not clear the write's tracker: when
    the write finishes it is pushed, committed as version 1 and reported ``ok``.
    """
    alice = await django_user_model.objects.acreate(username="alice")
    bob = await django_user_model.objects.acreate(username="bob")
    await asyncio.to_thread(create_project_in_copy, bob, "Bob's match")
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

        bob_read = await bob_session.request(application, "GET", "/api/projects")
        alice_read = await alice_session.request(application, "GET", "/api/projects")
        alice_status = await alice_session.request(application, "GET", "/api/sync/status")
        assert not write.done()
        # Nothing is committed while the write is still running.
        assert await asyncio.to_thread(_registry_version, alice) == 0
        held.release.set()
        written = await write
    finally:
        post_save.disconnect(held, sender=Project)

    assert bob_read.status == 200
    assert [p["name"] for p in bob_read.json()["projects"]] == ["Bob's match"]
    assert alice_read.status == 200
    assert {p["name"] for p in alice_read.json()["projects"]} <= {held.name}
    # Alice's own read honestly says her data has a write not yet in a snapshot.
    assert alice_read.headers["x-sync-status"] == "pending"
    assert alice_status.json()["dirty"] is True
    assert alice_status.json()["version"] == 0

    # The write's tracker was the same object before and after the reads, and still
    # held alice: the reads (each with a tracker of its own) did not reset it.
    (before, noted_before), (after, noted_after) = held.trackers
    assert before is not None
    assert before is after
    assert noted_before == noted_after == [alice.pk]

    assert written.status == 201, written.body
    assert written.headers["x-sync-status"] == "ok"
    row = await asyncio.to_thread(registry, alice)
    assert (row.version, row.status) == (1, "ok")
    assert row.object_key.startswith(f"snapshots/{alice.pk}/0000000001-")
    assert await asyncio.to_thread(snapshot_names, row, tmp_path) == [held.name]
    state = workingcopy.read_state(alice.pk)
    assert (state.base_version, state.dirty) == (1, False)
    # Bob's reads wrote nothing, so nothing was committed for him.
    assert await asyncio.to_thread(registry, bob) is None


async def test_work_spawned_inside_a_tracked_context_reaches_the_same_tracker(
    django_user_model,
):
    """Tasks, ``sync_to_async`` and copied contexts write on the tracker that spawned them."""
    users = [await django_user_model.objects.acreate(username=f"user{i}") for i in range(4)]
    in_task, in_sync_to_async, in_copied_context, in_bare_thread = users

    with tracking.track_writes() as tracker:

        async def a_task():
            await sync_to_async(create_project_in_copy, thread_sensitive=False)(in_task, "task")

        await asyncio.create_task(a_task())
        await sync_to_async(create_project_in_copy)(in_sync_to_async, "sync_to_async")
        context = contextvars.copy_context()
        copied = threading.Thread(
            target=context.run, args=(create_project_in_copy, in_copied_context, "copied context")
        )
        copied.start()
        copied.join()
        # A bare thread starts with an empty context: it has no tracker, so its write is
        # not this tracker's to push, and marks the copy dirty on its own.
        bare = threading.Thread(target=create_project_in_copy, args=(in_bare_thread, "bare thread"))
        bare.start()
        bare.join()
        assert tracking.current_tracker() is tracker

    assert tracking.current_tracker() is None
    assert tracker.user_ids == sorted([in_task.pk, in_sync_to_async.pk, in_copied_context.pk])
    for user in users:
        assert workingcopy.read_state(user.pk).dirty is True


async def test_concurrent_contexts_on_one_loop_have_their_own_trackers(django_user_model):
    """A long tracked write and a short tracked request interleave on one event loop.

    With ``threading.local`` both would share (and the short one would reset) one flag.
    """
    alice = await django_user_model.objects.acreate(username="alice")
    bob = await django_user_model.objects.acreate(username="bob")
    long_wrote = asyncio.Event()
    short_done = asyncio.Event()

    async def long_write():
        with tracking.track_writes() as tracker:
            await asyncio.to_thread(create_project_in_copy, alice, "long")
            long_wrote.set()
            await short_done.wait()
            still_mine = tracking.current_tracker() is tracker
            await asyncio.to_thread(create_project_in_copy, alice, "long, after the short one")
        return tracker, still_mine

    async def short_request():
        await long_wrote.wait()
        with tracking.track_writes() as tracker:
            names = await asyncio.to_thread(project_names, alice)  # alice's own read
            await asyncio.to_thread(create_project_in_copy, bob, "short")
        short_done.set()
        return tracker, names

    (long_tracker, still_mine), (short_tracker, names) = await asyncio.gather(
        long_write(), short_request()
    )
    assert long_tracker is not short_tracker
    assert still_mine
    assert long_tracker.user_ids == [alice.pk]
    assert short_tracker.user_ids == [bob.pk]
    assert names == ["long"]
    assert tracking.current_tracker() is None


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
        names = await asyncio.to_thread(project_names, user)
        assert sorted(names) == [f"user{index}-project{r}" for r in range(3)]


def _registry_version(user):
    row = registry(user)
    return row.version if row else 0
