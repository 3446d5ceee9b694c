from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"

    def ready(self):
        # The Celery worker hook that sweeps lost jobs when a worker is ready.
        from . import jobs, queueing, signals  # noqa: F401

        # The in-process pool sweeps when it starts, too: handed to queueing here so
        # that queueing, which jobs queues through, never imports jobs.
        queueing.when_pool_starts(jobs.sweep_lost_jobs)
