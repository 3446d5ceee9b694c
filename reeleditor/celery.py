"""Celery application.

Only used when ``REDIS_URL`` is set; the embedded default runs export jobs on an
in-process worker pool with the same task body (see docs/architecture.md).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reeleditor.settings")

app = Celery("reeleditor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
