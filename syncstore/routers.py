"""Sends the per-user apps' models to the bound user's database, everything else to default."""

from django.conf import settings

from . import userdb
from .binding import current_binding


def _is_user_model(model) -> bool:
    return model._meta.app_label in settings.USER_DATABASE_APPS


class UserDatabaseRouter:
    def db_for_read(self, model, **hints):
        if not _is_user_model(model):
            return None
        # An object already loaded from a user database keeps using that database
        # for its related lookups, whatever is bound now.
        instance = hints.get("instance")
        if instance is not None and instance._state.db and userdb.is_user_alias(instance._state.db):
            return instance._state.db
        # Raises NoUserBound: a per-user model must never fall through to default.
        return current_binding().alias

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        # Instances, not type(obj): request.user is a lazy proxy whose type is not a model.
        if _is_user_model(obj1) or _is_user_model(obj2):
            return obj1._state.db == obj2._state.db
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if userdb.is_user_alias(db):
            return app_label in settings.USER_DATABASE_APPS
        if app_label in settings.USER_DATABASE_APPS:
            return False
        return None
