"""Worker threads joined by small bounded queues: the shape both renders run in.

A render decodes on one thread, does its per-frame work on the calling thread and
encodes on another, so decoding, drawing or scaling, and x264 overlap on several cores
(PyAV, swscale and OpenCV release the GIL while they work), and the queues between them
hold a few frames only, so memory does not grow with the length of the video.

The threads of one render are a :class:`Stages`: they share one stop flag. A stage that
fails keeps its error (translated by the render into a
:class:`~exports.errors.RenderError`) and raises the flag; every blocked ``put`` or
``get`` looks at the flag every :data:`POLL_SECONDS` and raises :class:`Stopped`. So one
failure anywhere, or the calling thread giving up (a cancel, an error of its own), stops
every stage, and no thread is left waiting on a queue that nobody serves.
"""

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)

# How long a blocked stage waits before looking at the stop flag again (seconds).
POLL_SECONDS = 0.05
# How long stopping waits for a worker thread before giving up on it (seconds).
JOIN_SECONDS = 30.0

END = object()  # the last item a producer puts on a queue: there is no more


class Stopped(Exception):
    """A stage saw the stop flag (another stage failed, or the render was abandoned)."""


def keep(exc: BaseException) -> BaseException:
    """The default translation of a stage's failure: raise it as it is."""
    return exc


class _Stage(threading.Thread):
    """Runs ``body``; a failure is kept, translated, and stops the other stages."""

    def __init__(self, name, body, stop: threading.Event, errors):
        super().__init__(name=name, daemon=True)
        self.body, self.stop, self.errors = body, stop, errors
        self.error: BaseException | None = None

    def run(self):
        try:
            self.body()
        except Stopped:
            pass
        except BaseException as exc:
            error = self.errors(exc)
            if error is not exc:
                error.__cause__ = exc
            self.error = error
            self.stop.set()


class Stages:
    """The worker threads of one render and the stop flag they share.

    Use as a context manager: leaving it (however) stops and joins every stage, so no
    thread outlives the render or touches its containers once they are closed.
    """

    def __init__(self):
        self.stop = threading.Event()
        self._stages: list[_Stage] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def start(
        self, name: str, body: Callable[[], None], errors: Callable = keep
    ) -> threading.Thread:
        """Run ``body()`` on a thread of its own; ``errors(exc)`` says what its failure raises."""
        stage = _Stage(name, body, self.stop, errors)
        self._stages.append(stage)
        stage.start()
        return stage

    def put(self, q: queue.Queue, item) -> None:
        """Put ``item`` on ``q``, waiting while it is full; raises Stopped once stopped."""
        while True:
            self.raise_if_stopped()
            try:
                q.put(item, timeout=POLL_SECONDS)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue):
        """The next item of ``q``, waiting while it is empty; raises Stopped once stopped."""
        while True:
            self.raise_if_stopped()
            try:
                return q.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue

    def items(self, q: queue.Queue) -> Iterator:
        """Items of ``q`` up to its :data:`END`."""
        while (item := self.get(q)) is not END:
            yield item

    def raise_if_stopped(self) -> None:
        if self.stop.is_set():
            raise Stopped

    def run(self, work: Callable[[], None], *, silent_stop: BaseException) -> None:
        """Do ``work`` on the calling thread while the stages run; raise what stopped them.

        ``work`` ends when the render is done (its last stage joined). Should a stage
        fail meanwhile, ``work`` is stopped and the first stage's error (in the order
        they were started) is raised; ``silent_stop`` if stopped with no error, so a
        render never ends as a silent success. Exceptions of ``work`` itself (a
        cancellation, an error it found) propagate as they are.
        """
        with contextlib.suppress(Stopped):
            work()
        for stage in self._stages:
            if stage.error is not None:
                raise stage.error
        if self.stop.is_set():
            raise silent_stop

    def close(self) -> None:
        self.stop.set()
        for stage in self._stages:
            stage.join(JOIN_SECONDS)
            if stage.is_alive():
                logger.error("%s did not stop within %ss", stage.name, JOIN_SECONDS)
