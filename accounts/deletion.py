"""A user deletes their own account: switched off now, deleted after a grace period.

Asking (with the password) ends every session of the account at once: the password is
hashed again with a new salt, so every session's auth hash stops matching (on every
instance: they are rows in the central database), and the account is made inactive.
For ``ACCOUNT_PURGE_GRACE_SECONDS`` nothing else happens: signing in again cancels the
request (``AccountBackend`` lets such an account authenticate, and only that way).
After it, the user row is deleted, which leaves the tombstone that keeps the id from
ever seeing this data again (``syncstore.accounts``), and the data is purged from the
store, media storage and this machine (the other machines purge their own copies).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from syncstore import accounts as stored_accounts
from syncstore.models import DeletedAccount

from .models import DeletionRequest

logger = logging.getLogger(__name__)


def purge_date(requested_at):
    return requested_at + timedelta(seconds=settings.ACCOUNT_PURGE_GRACE_SECONDS)


def request_deletion(user, password: str) -> DeletionRequest:
    """Switch the account off and end its sessions everywhere; the caller logs out."""
    with transaction.atomic():
        user.set_password(password)  # a new salt: every session's auth hash is stale now
        user.is_active = False
        user.save(update_fields=["password", "is_active"])
        deletion, _ = DeletionRequest.objects.update_or_create(
            user=user, defaults={"requested_at": timezone.now()}
        )
    logger.info("user %s asked for their account to be deleted", user.pk)
    return deletion


def pending(user) -> bool:
    return DeletionRequest.objects.filter(user_id=user.pk).exists()


@receiver(user_logged_in)
def cancel_on_sign_in(sender, request, user, **kwargs):
    """Signing in during the grace period is changing one's mind."""
    with transaction.atomic():
        cancelled, _ = DeletionRequest.objects.filter(user_id=user.pk).delete()
        if cancelled:
            get_user_model().objects.filter(pk=user.pk).update(is_active=True)
            user.is_active = True
    if cancelled:
        logger.info("user %s signed in again: their account stays", user.pk)
        from django.contrib import messages

        messages.success(request, "Welcome back. Your account will not be deleted.")


class AccountBackend(ModelBackend):
    """Django's backend, except that an account waiting for deletion may sign in (which
    cancels the deletion). Its sessions are not accepted meanwhile: ``get_user`` wants an
    active account, as Django's does."""

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) or pending(user)

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


def delete_due_accounts() -> int:
    """Delete the accounts whose grace period is over and purge their data at once
    (the grace period was the request's). Returns how many were deleted."""
    limit = timezone.now() - timedelta(seconds=settings.ACCOUNT_PURGE_GRACE_SECONDS)
    deleted = 0
    for deletion in DeletionRequest.objects.filter(requested_at__lte=limit).select_related("user"):
        user_id, requested_at = deletion.user_id, deletion.requested_at
        with transaction.atomic():
            # Claimed by deleting the request: every process's pass sees it, one deletes
            # it, and a sign-in cancelling it at the same moment wins or loses whole.
            claimed, _ = DeletionRequest.objects.filter(pk=deletion.pk).delete()
            if not claimed:
                continue
            # Data exports (rows cascade; their zips are under the user's media prefix).
            deletion.user.delete()  # the tombstone is written by syncstore.accounts' signal
            DeletedAccount.objects.filter(user_id=user_id).update(deleted_at=requested_at)
        stored_accounts.purge(DeletedAccount.objects.get(user_id=user_id))
        logger.info("deleted the account of user %s, as asked on %s", user_id, requested_at)
        deleted += 1
    return deleted
