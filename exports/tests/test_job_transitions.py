"""Two attempts of one job at once: a worker that went quiet, was marked lost, and wakes up.

Every transition is a compare-and-set on (processing, attempt number), so the stale
attempt can neither overwrite the newer attempt's outcome nor move its progress, and a
long upload or finalize keeps beating so it is never taken for a lost worker.

Real jobs run through ``runner.run_job`` on real threads (the stale attempt on a thread
of its own, the retry on the in-process pool); the only help is a wait or a sleep put
into a real function to hold a race window open.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from exports import jobs, progress, queueing, runner
from exports.finalize import FinalizeError
from exports.models import ExportJob
from projects import media
from projects.models import Project, WorkingVideo
from projects.tests.helpers import create_project, upload_clip
from syncstore.binding import bound_to_user

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 60


@pytest.fixture
def job(settings, local_store, alice, alice_client, game_clip_path):
    """A pending framing job, not queued: each test decides who runs it and when."""
    settings.EXPORT_MODE = "mock"
    settings.EXPORT_PRESET = "ultrafast"
    # A worker that "freezes" in these tests must not beat behind the test's back.
    settings.EXPORT_HEARTBEAT_SECONDS = 60
    project = create_project(alice_client)
    upload_clip(alice_client, project["id"], game_clip_path)
    with bound_to_user(alice.pk):
        params = jobs.framing_params(Project.objects.get(pk=project["id"]), upscale=False)
    return ExportJob.objects.create(
        user=alice, project_id=project["id"], project_name="Game", kind="framing", params=params
    )


def row(job) -> ExportJob:
    return ExportJob.objects.get(pk=job.pk)


def start_worker(job) -> threading.Thread:
    """Attempt 1, on a thread of its own (the pool stays free for the retry)."""
    worker = threading.Thread(
        target=queueing._run_in_pool, args=(str(job.pk),), name="stale-worker", daemon=True
    )
    worker.start()
    return worker


def went_quiet_and_retried(job, settings, *, retry=True) -> None:
    """The worker froze: its heartbeat is long gone, someone looks, and the user retries."""
    stale = timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER + 5)
    ExportJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    assert jobs.mark_if_lost(row(job))
    assert (row(job).status, row(job).error_code) == ("error", "worker_lost")
    if retry:
        jobs.retry(row(job))  # queued on commit, on the in-process pool: attempt 2


def wait_for(predicate, what: str):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finished(job) -> bool:
    return row(job).status not in ExportJob.ACTIVE


@pytest.fixture
def hold(monkeypatch):
    """``hold(name, attempt)`` makes ``runner.<name>`` wait, for that attempt, until released.

    Returns ``(entered, release)``; ``then`` replaces the real call once released. All
    are released when the test ends, so a failing test leaves no worker stuck in the pool.
    """
    releases = []

    def hold(name: str, attempt: int, *, then=None):
        real = getattr(runner, name)
        entered, release = threading.Event(), threading.Event()
        releases.append(release)

        def held(job, *args):
            if job.attempts == attempt:
                entered.set()
                assert release.wait(TIMEOUT)
                if then is not None:
                    return then(job, *args)
            return real(job, *args)

        monkeypatch.setattr(runner, name, held)
        return entered, release

    yield hold
    for release in releases:
        release.set()


@pytest.fixture
def sent(monkeypatch):
    """Every progress message, with the name of the thread that sent it."""
    messages = []
    real = progress.broadcast

    def recording(job):
        messages.append((threading.current_thread().name, job.to_message()))
        real(job)

    monkeypatch.setattr(progress, "broadcast", recording)
    return messages


@pytest.fixture
def frames_reported(monkeypatch):
    """The names of the threads the pipeline reported progress on, once per call."""
    threads = []
    real = progress.ProgressReporter.__call__

    def recording(self, done, total, phase):
        threads.append(threading.current_thread().name)
        real(self, done, total, phase)

    monkeypatch.setattr(progress.ProgressReporter, "__call__", recording)
    return threads


def working_videos(user) -> list[int]:
    with bound_to_user(user.pk):
        return list(WorkingVideo.objects.order_by("id").values_list("id", flat=True))


def test_a_stale_attempts_late_failure_does_not_overwrite_the_retry_that_completed(
    job, alice, settings, hold, sent
):
    def store_went_down(job, *args):
        raise FinalizeError("The store went away.", "sync_failed", True)

    entered, release = hold("finalize", attempt=1, then=store_went_down)
    worker = start_worker(job)
    assert entered.wait(TIMEOUT)
    went_quiet_and_retried(job, settings)
    wait_for(lambda: finished(job), "the retry to finish")
    completed = row(job)
    assert (completed.status, completed.attempts) == ("complete", 2)

    release.set()  # attempt 1 wakes up and fails at last
    worker.join(TIMEOUT)
    assert not worker.is_alive()

    after = row(job)
    assert (after.status, after.attempts, after.error_code) == ("complete", 2, "")
    assert after.result["working_video_id"] == completed.result["working_video_id"]
    assert after.progress == 100
    # Nor did it tell the browser anything but the truth.
    announced = [m["status"] for thread, m in sent if thread == "stale-worker"]
    assert set(announced) <= {"processing"}
    assert working_videos(alice) == [completed.result["working_video_id"]]


def test_a_stale_attempt_cannot_complete_a_job_that_ended_as_worker_lost(
    job, alice, settings, hold, sent
):
    entered, release = hold("finalize", attempt=1)
    worker = start_worker(job)
    assert entered.wait(TIMEOUT)
    went_quiet_and_retried(job, settings, retry=False)

    release.set()  # attempt 1 finalizes after all, but the job is no longer its own
    worker.join(TIMEOUT)
    assert not worker.is_alive()
    lost = row(job)
    assert (lost.status, lost.error_code, lost.retryable) == ("error", "worker_lost", True)
    assert "working_video_id" not in lost.result
    assert [m["status"] for thread, m in sent if thread == "stale-worker"][-1] == "processing"

    # The retry reuses the rendered file and finds the video attempt 1 recorded.
    jobs.retry(lost)
    wait_for(lambda: finished(job), "the retry to finish")
    retried = row(job)
    assert (retried.status, retried.attempts) == ("complete", 2)
    assert working_videos(alice) == [retried.result["working_video_id"]]


def test_a_stale_attempts_progress_does_not_move_the_new_attempt_and_it_stops_rendering(
    job, alice, settings, hold, sent, frames_reported
):
    entered_1, release_1 = hold("_render_framing", attempt=1)
    entered_2, release_2 = hold("_render_framing", attempt=2)
    worker = start_worker(job)
    assert entered_1.wait(TIMEOUT)
    went_quiet_and_retried(job, settings)
    assert entered_2.wait(TIMEOUT)
    before = row(job)
    assert (before.status, before.attempts) == ("processing", 2)

    release_1.set()  # attempt 1 goes on rendering, reporting progress as it goes
    worker.join(TIMEOUT)
    assert not worker.is_alive()
    during = row(job)
    assert (during.status, during.attempts) == ("processing", 2)
    assert (during.progress, during.phase, during.heartbeat_at) == (
        before.progress,
        before.phase,
        before.heartbeat_at,
    )
    assert during.result == before.result
    # It noticed at its first progress report and stopped: nothing rendered or uploaded
    # (a whole render reports every one of its 60 frames).
    assert frames_reported.count("stale-worker") <= 2
    assert not (settings.MEDIA_ROOT / f"users/{alice.pk}/working").exists()
    stale_messages = [m for thread, m in sent if thread == "stale-worker"]
    assert all(m["progress"] <= before.progress for m in stale_messages)

    release_2.set()
    wait_for(lambda: finished(job), "attempt 2 to finish")
    done = row(job)
    assert (done.status, done.attempts, done.progress) == ("complete", 2, 100)
    assert working_videos(alice) == [done.result["working_video_id"]]


def test_a_slow_upload_and_finalize_keep_the_heartbeat_going(job, settings, monkeypatch):
    settings.EXPORT_STALE_AFTER = 1
    settings.EXPORT_HEARTBEAT_SECONDS = 0.2
    slow = threading.Event()  # set while the worker is in a slow call

    def slowly(real):
        def call(*args):
            slow.set()
            try:
                time.sleep(2.5)  # well past EXPORT_STALE_AFTER, with no progress reported
                return real(*args)
            finally:
                slow.clear()

        return call

    monkeypatch.setattr(media, "save", slowly(media.save))
    monkeypatch.setattr(runner, "finalize", slowly(runner.finalize))
    worker = start_worker(job)

    looked, marked_lost = 0, []
    while worker.is_alive():
        if slow.is_set():  # what the API and the WebSocket do whenever anyone looks
            looked += 1
            if jobs.mark_if_lost(row(job)):
                marked_lost.append(row(job).phase)
        time.sleep(0.05)
    worker.join()

    assert looked > 20  # it was looked at all through both slow calls
    assert marked_lost == []
    done = row(job)
    assert (done.status, done.attempts, done.error_code) == ("complete", 1, "")
    assert "working_video_id" in done.result
