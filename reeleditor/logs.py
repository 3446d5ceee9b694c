"""Log lines that say whose work they belong to, and JSON logs.

Each line carries the request id, the user id and the export job id of the work it
belongs to (ContextVars, so concurrent requests never mix them up). With
``LOG_FORMAT=json`` every line is one JSON object. Kept free of app imports: Django
configures logging before the apps are loaded.
"""

import json
import logging
from contextlib import contextmanager
from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("reeleditor_request_id", default="")
job_id: ContextVar[str] = ContextVar("reeleditor_job_id", default="")


@contextmanager
def working_on_job(job):
    """Log lines inside carry this export job's id."""
    token = job_id.set(str(job))
    try:
        yield
    finally:
        job_id.reset(token)


class ContextFilter(logging.Filter):
    """Adds request_id, user_id and job_id to every record (empty when unknown)."""

    def filter(self, record):
        from syncstore.binding import current_binding_or_none

        binding = current_binding_or_none()
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        record.user_id = binding.user_id if binding else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "user_id", "job_id"):
            value = getattr(record, key, "")
            if value != "":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
