"""Deleting an account: a tombstone now, every copy of its data purged after a grace
period (``ACCOUNT_PURGE_GRACE_SECONDS``).

The grace period is there because deleting an account by mistake must be recoverable
by an operator; after it, the account's snapshots, conflict copies and media are
removed from the store, and each machine removes its own working copy (the retry loop
does it where the copies are, ``manage.py purgeaccounts`` on demand). Until then a copy
is never served to anyone else: a user id reused later gets a new registry incarnation,
and a copy of another incarnation is set aside (``sync.prepare_copy``).
"""

import logging
import shutil
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone

from . import keys, userdb
from .models import DeletedAccount, SyncState
from .stores import StoreError, get_store

logger = logging.getLogger(__name__)


@receiver(pre_delete, sender=get_user_model())
def remember_deleted_account(sender, instance, **kwargs):
    row = SyncState.objects.filter(user_id=instance.pk).first()
    DeletedAccount.objects.update_or_create(
        user_id=instance.pk,
        defaults={
            "username": instance.get_username(),
            "incarnation": row.incarnation if row else "",
            "deleted_at": timezone.now(),
            "purged_at": None,
        },
    )


def due_for_purge():
    limit = timezone.now() - timedelta(seconds=settings.ACCOUNT_PURGE_GRACE_SECONDS)
    # An id in use again (the same id given to a new account) is that account's now.
    in_use = get_user_model().objects.values("pk")
    return DeletedAccount.objects.filter(deleted_at__lte=limit).exclude(user_id__in=in_use)


def purge(account: DeletedAccount) -> bool:
    """Remove the account's stored data and this machine's copy; True when all is gone."""
    purge_local_copy(account.user_id)
    if account.purged_at is not None:
        return True
    try:
        _purge_store(account.user_id)
        _purge_media(account.user_id)
    except (StoreError, OSError) as exc:
        logger.warning("purge of deleted user %s postponed: %s", account.user_id, exc)
        return False
    DeletedAccount.objects.filter(pk=account.pk).update(purged_at=timezone.now())
    logger.info("purged the data of deleted user %s", account.user_id)
    return True


def purge_local_copy(user_id: int) -> None:
    folder = userdb.user_dir(user_id)
    if folder.exists():
        userdb.forget(user_id)
        shutil.rmtree(folder)


def _purge_store(user_id: int) -> None:
    store = get_store()
    for prefix in (keys.snapshot_prefix(user_id), keys.conflict_prefix(user_id)):
        for key in store.list_keys(prefix):
            store.delete(key)


def _purge_media(user_id: int, folder: str | None = None) -> None:
    folder = folder or f"users/{int(user_id)}"
    try:
        directories, files = default_storage.listdir(folder)
    except FileNotFoundError:  # a local folder that was never made
        return
    for name in files:
        default_storage.delete(f"{folder}/{name}")
    for directory in directories:
        _purge_media(user_id, f"{folder}/{directory}")


def purge_due_accounts() -> int:
    """Purge every account past its grace period; returns how many are fully purged."""
    return sum(purge(account) for account in due_for_purge())
