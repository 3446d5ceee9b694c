import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class SignupAttempt(models.Model):
    """One sign-up form sent, by address, in the central database: every instance counts
    the same ones (``accounts.signup.too_many_signups``). Rows older than the window are
    deleted as new ones come."""

    address = models.GenericIPAddressField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["address", "at"])]

    def __str__(self):
        return f"sign-up from {self.address} at {self.at:%Y-%m-%d %H:%M:%S}"


class DeletionRequest(models.Model):
    """A user asked for their account to be deleted (``accounts.deletion``).

    Until ``ACCOUNT_PURGE_GRACE_SECONDS`` have passed the account is only switched off
    (no session works, each was ended); signing in again cancels the request. After it,
    the account is deleted and its data purged everywhere.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="deletion_request"
    )
    requested_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"deletion of {self.user} asked at {self.requested_at:%Y-%m-%d %H:%M}"


class DataExport(models.Model):
    """A zip of everything a user made (``accounts.dataexport``), built in the background.

    Downloadable once, by its owner, until it expires; then the file is deleted.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        BUILDING = "building"
        READY = "ready"
        DOWNLOADED = "downloaded"
        FAILED = "failed"
        EXPIRED = "expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="data_exports"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    percent = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True)
    file = models.CharField(max_length=300, blank=True)  # media storage name of the zip
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)  # the builder's heartbeat
    downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"data export {self.id} of {self.user} ({self.status})"
