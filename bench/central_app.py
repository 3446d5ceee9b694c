"""Bench-only: what the projects app needs to live in one central database.

Installed only by ``bench/central_settings.py`` (the baseline of
``bench/central_vs_peruser.py``); nothing here runs in the app.

In the per-user design a user's database holds only their rows, so the views never
filter by owner. With every user's projects in one table, isolation needs what a
central design would have: an owner column on ``projects_project`` (indexed, a foreign
key to the user) and every ``Project.objects`` query filtered by the signed-in user.
Clips, videos and highlight regions are only ever reached through their project, so
they need no owner column (as a central design would have them). The column is added
after ``migrate`` (``post_migrate``), the filter by patching the manager class of
``Project`` here, so the models and views themselves are unchanged.

``CentralBindingMiddleware`` takes ``SyncMiddleware``'s place: the views read the
binding (``current_binding().alias`` for ``transaction.atomic``, the user id for media
names), so it binds the signed-in user to the ``default`` alias, and gives uploads a
no-op write lease. No lease, no copy to freshen, no snapshot to push.
"""

from django.apps import AppConfig
from django.db import connections, models
from django.db.models.signals import post_migrate

from syncstore import binding

OWNER_COLUMN_SQL = [
    "ALTER TABLE projects_project ADD COLUMN IF NOT EXISTS owner_id bigint NOT NULL"
    " REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED",
    "CREATE INDEX IF NOT EXISTS projects_project_owner_id ON projects_project (owner_id)",
]


def add_owner_column(using, **kwargs):
    with connections[using].cursor() as cursor:
        for statement in OWNER_COLUMN_SQL:
            cursor.execute(statement)


class CentralConfig(AppConfig):
    name = "bench.central_app"
    label = "bench_central"
    verbose_name = "Bench: projects on the central database"

    def ready(self):
        from projects.models import Project

        Project.add_to_class(
            "owner_id",
            models.BigIntegerField(default=binding.current_user_id, db_index=True, editable=False),
        )
        # The class made by ProjectQuerySet.as_manager() is Project's alone; patching it
        # (not an instance) survives Django re-copying managers when _meta caches expire.
        manager_class = type(Project._default_manager)
        unfiltered = manager_class.get_queryset

        def get_queryset(manager):
            return unfiltered(manager).filter(owner_id=binding.current_user_id())

        manager_class.get_queryset = get_queryset
        # Sent per app with models (this one has none): after the projects tables exist.
        post_migrate.connect(add_owner_column, sender=self.apps.get_app_config("projects"))


class _NoLease:
    """What ``take_write_lease(request)`` takes in the central design: nothing."""

    def take(self):
        pass

    def release(self):
        pass


class CentralBindingMiddleware:
    """Bind the signed-in user to ``default`` for the request (no lease, no sync)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated:
            return self.get_response(request)
        request.sync_deferred_lease = _NoLease()
        # binding.bound_to_user() would open a per-user SQLite file; set the ContextVar
        # the router and views read directly, to the central alias.
        token = binding._current.set(binding.UserBinding(request.user.pk, "default"))
        try:
            return self.get_response(request)
        finally:
            binding._current.reset(token)
