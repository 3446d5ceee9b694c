from django.apps import AppConfig


class SyncstoreConfig(AppConfig):
    name = "syncstore"
    verbose_name = "Sync store"

    def ready(self):
        # The execute wrapper that records writes to user databases, and the Celery
        # worker hook that starts the periodic retry there.
        from . import signals, tracking  # noqa: F401
