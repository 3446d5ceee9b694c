"""The sync registry, in the central database: one row per user.

The row is the commit point of a snapshot. A push uploads an immutable object, then
moves ``version`` from N to N+1 with a compare-and-set ``UPDATE ... WHERE version = N``;
zero rows updated means another writer committed first. No row (or version 0) means
the user has no snapshot yet: a definite answer from our own database, never a guess
from the object store.
"""

from django.conf import settings
from django.db import models


class SyncState(models.Model):
    class Status(models.TextChoices):
        OK = "ok"
        PENDING = "pending"  # a write is in the working copy, not yet in a snapshot
        FAILED = "failed"  # the last push failed; the write is kept locally, retried
        CONFLICT = "conflict"  # a copy was refused; kept as a conflict copy

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    version = models.PositiveBigIntegerField(default=0)
    object_key = models.CharField(max_length=300, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    checksum = models.CharField(max_length=64, blank=True)  # sha256 of the stored object
    committed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)
    last_error = models.TextField(blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sync registry entry"
        verbose_name_plural = "sync registry"

    def __str__(self):
        return f"user {self.user_id} v{self.version} ({self.status})"
