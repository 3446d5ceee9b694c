"""Share links, in the central database: a public page must find a video without
knowing whose it is, and without opening anyone's database.

A link holds what its page shows (the video's and poster's storage names, the title
and size), copied from the user's final video when the link was made: final videos
never change, and a public request reads nothing else.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ShareLinkQuerySet(models.QuerySet):
    def live(self, now=None):
        """Links that still open: not revoked, not past their expiry."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ShareLink(models.Model):
    # secrets.token_urlsafe(32): 256 random bits, the whole of the link's secret.
    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links"
    )
    project_id = models.PositiveBigIntegerField()  # in the user's own database
    final_video_id = models.PositiveBigIntegerField()
    title = models.CharField(max_length=200)
    file = models.CharField(max_length=300)  # media names, under the user's prefix
    poster = models.CharField(max_length=300, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "final_video_id"])]

    def __str__(self):
        return f"{self.title} ({self.status})"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "live"
