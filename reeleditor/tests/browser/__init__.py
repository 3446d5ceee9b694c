"""Support for the browser tests (``reeleditor/tests/test_browser_*.py``), by concern:

- ``plugin``: the pytest plugin (listed in the root ``conftest.py``): the ``server`` and
  ``real_server`` live apps, ``s3_proxy``, ``browser``, ``page_for``, ``page``,
  ``make_user``, ``browser_clip``; the ``browser`` marker; failure screenshots and logs.
- ``live_server``: ``LiveServer``, a ``daphne`` process serving the app with its own
  environment, data folder, central database and bucket, exactly as in production.
- ``s3_proxy``: ``S3Proxy``, the TCP proxy in front of the moto S3 endpoint that a test
  can make fail for real (connections refused, open ones cut) and bring back.
- ``pages``: the page helpers (``signup``, ``login``, ``api``, ``poll``, ``screenshot``,
  ``wait_synced``, and touch input over CDP: ``touch_drag``, ``pinch``, ``tap``,
  ``touch_gesture``...). ``screenshot(page, name)`` saves
  ``test-artifacts/screenshots/<name>.png`` for people to look at.

Tests import what they use from here: ``from reeleditor.tests.browser import api, login``.
"""

from .live_server import LiveServer
from .pages import (
    api,
    create_project,
    drag_by,
    expect_count,
    login,
    make_final_video,
    pinch,
    poll,
    probe_mp4,
    progress_values,
    record_sync_badge,
    screenshot,
    signup,
    sync_badge_history,
    sync_status,
    tap,
    touch_drag,
    touch_gesture,
    unique_username,
    upload_clip,
    video_plays,
    wait_for_progress,
    wait_synced,
    watch_progress,
)
from .s3_proxy import S3Proxy

__all__ = [
    "LiveServer",
    "S3Proxy",
    "api",
    "create_project",
    "drag_by",
    "expect_count",
    "login",
    "make_final_video",
    "pinch",
    "poll",
    "probe_mp4",
    "progress_values",
    "record_sync_badge",
    "screenshot",
    "signup",
    "sync_badge_history",
    "sync_status",
    "tap",
    "touch_drag",
    "touch_gesture",
    "unique_username",
    "upload_clip",
    "video_plays",
    "wait_for_progress",
    "wait_synced",
    "watch_progress",
]
