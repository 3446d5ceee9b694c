from django.apps import AppConfig


class SyncstoreConfig(AppConfig):
    name = "syncstore"
    verbose_name = "Sync store"

    def ready(self):
        # The execute wrapper that notes writes to user databases, and the Celery
        # worker hook that starts the periodic retry there.
        from . import accounts, signals, sync, tracking, userdb  # noqa: F401

        # How a process prepares a user's copy before first use (create it from the
        # registry's answer, check it belongs to this account): the sync layer's rule,
        # handed to userdb so that userdb never imports sync.
        userdb.set_copy_preparer(sync.prepare_copy)
