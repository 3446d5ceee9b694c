"""The sync registry, in the central database: one row per user, and the versions.

The row is the commit point of a snapshot. A push uploads an immutable object, then
moves ``version`` from N to N+1 with a compare-and-set ``UPDATE ... WHERE version = N
AND fence = F``; zero rows updated means another writer committed first, or the lease
this writer held was taken over. No row (or version 0) means the user has no snapshot
yet: a definite answer from our own database, never a guess from the object store.

The same row holds the user's write lease (see leases.py): whoever holds it is the only
writer of the user's data on any machine that shares this database, and each
acquisition increments ``fence``, so a writer whose lease was taken can never commit.
"""

import uuid

from django.conf import settings
from django.db import IntegrityError, models


def new_incarnation() -> str:
    return uuid.uuid4().hex


class SyncStateManager(models.Manager):
    def ensure(self, user_id: int) -> "SyncState":
        """The user's row, made at version 0 if missing.

        Raises ``SyncState.DoesNotExist`` when there is no such account (the foreign key
        refused the row).
        """
        try:
            row, _ = self.get_or_create(user_id=user_id)
        except IntegrityError:  # made by a concurrent first writer, or no account
            row = self.get(user_id=user_id)
        return row


class SyncState(models.Model):
    class Status(models.TextChoices):
        OK = "ok"
        PENDING = "pending"  # a write is in a working copy, not yet in a snapshot
        FAILED = "failed"  # the last push failed; the write is kept locally, retried
        CONFLICT = "conflict"  # a copy was refused and kept as a conflict copy, unseen yet

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
    # The write lease: a random token of the holder and when it lapses unless renewed.
    lease_holder = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Incremented by every acquisition of the lease; the commit checks it.
    fence = models.PositiveBigIntegerField(default=0)
    # Which account this data belongs to. Working copies record it: a copy whose
    # incarnation differs (a user id reused after the central database was reset) is
    # never served to this account.
    incarnation = models.CharField(max_length=32, default=new_incarnation)

    objects = SyncStateManager()

    class Meta:
        verbose_name = "sync registry entry"
        verbose_name_plural = "sync registry"

    def __str__(self):
        return f"user {self.user_id} v{self.version} ({self.status})"


class SnapshotVersion(models.Model):
    """One committed version of a user's data, written in the commit's transaction.

    The history of what was committed: a machine that crashed between its commit and
    recording it locally finds its own object key here and knows the commit was its own.
    """

    class Kind(models.TextChoices):
        IMAGE = "image"  # the whole database
        SEGMENT = "segment"  # the WAL frames since the previous version (walsegments)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveBigIntegerField()
    # What the commit uploaded: an image, or a segment to apply to the version before.
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.IMAGE)
    object_key = models.CharField(max_length=300)
    checksum = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    committed_at = models.DateTimeField()
    # A whole image of this version, where there is one: the commit's own object, or
    # one made later off the request path (``retention``). A pull starts from the
    # latest image at or before the version it wants and applies the segments after.
    image_key = models.CharField(max_length=300, blank=True)
    image_checksum = models.CharField(max_length=64, blank=True)
    image_size_bytes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="one_snapshot_per_version")
        ]

    def __str__(self):
        return f"user {self.user_id} v{self.version}"


class MediaTombstone(models.Model):
    """A media file whose last reference was dropped by committed version ``version``.

    The file stays while any retained snapshot (versions before ``version``) may still
    be restored and point at it; the sweep after each commit removes it once the oldest
    retained version is ``version`` or later (``syncstore/mediagc.py``).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=300)
    version = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="one_tombstone_per_media_file")
        ]

    def __str__(self):
        return f"{self.name} (dropped in v{self.version})"


class DeletedAccount(models.Model):
    """An account that was deleted: its data is purged everywhere after a grace period.

    No foreign key: the user row is gone. Every machine removes its own working copy of
    the account once the grace period is over; the first purge also removes the
    snapshots, conflict copies and media (``syncstore/accounts.py``).
    """

    user_id = models.PositiveBigIntegerField(primary_key=True)
    username = models.CharField(max_length=150, blank=True)  # for people reading the admin
    incarnation = models.CharField(max_length=32, blank=True)
    deleted_at = models.DateTimeField()
    purged_at = models.DateTimeField(null=True, blank=True)  # store and media removed

    def __str__(self):
        return f"deleted user {self.user_id} ({self.username})"


class VersionSummary(models.Model):
    """What one committed version holds, in counts: a cache for the history page.

    Counting opens the version's snapshot (its image and segments, from the store), so
    the counts of each version are kept here once known (``syncstore/history.py``).
    ``object_key`` says which object they were read from: a row naming another object
    (the registry was reset and the number reused) is counted again. Rows of versions
    retention no longer keeps are removed when the history is listed.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveBigIntegerField()
    object_key = models.CharField(max_length=300)
    counts = models.JSONField(default=dict)  # {"projects": 2, "clips": 5, ...}
    # Set when this version was made by restoring an older one (the history's "restore").
    restored_from = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="one_summary_per_version")
        ]

    def __str__(self):
        return f"user {self.user_id} v{self.version} summary"
