from django.apps import AppConfig


class SyncstoreConfig(AppConfig):
    name = "syncstore"
    verbose_name = "Sync store"

    def ready(self):
        # Installs the execute wrapper that records writes to user databases.
        from . import tracking  # noqa: F401
