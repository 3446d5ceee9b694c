"""Export jobs, in the central database (workers on other machines must see them)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ExportJob(models.Model):
    class Kind(models.TextChoices):
        FRAMING = "framing", "Working video (framing)"
        OVERLAY = "overlay", "Final video (overlay)"
        # A game's probe, poster and filmstrip (games/media_job.py); project_id then
        # holds the game's id, project_name its name.
        GAME_MEDIA = "game_media", "Game poster and filmstrip"
        # A proposal of crop keyframes for one clip (reframing/job.py): result only.
        FOLLOW_PLAY = "follow_play", "Follow the play (proposal)"

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        COMPLETE = "complete"
        ERROR = "error"
        CANCELLED = "cancelled"

    ACTIVE = (Status.PENDING, Status.PROCESSING)
    # What a user can start from a project (the rest are started by the app itself).
    EXPORT_KINDS = (Kind.FRAMING, Kind.OVERLAY)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs"
    )
    project_id = models.PositiveBigIntegerField()  # in the user's own database
    project_name = models.CharField(max_length=200, blank=True)  # for people reading the admin
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)  # 0-100, never goes back
    phase = models.CharField(max_length=32, blank=True)
    message = models.CharField(max_length=300, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    retryable = models.BooleanField(default=False)
    # What to render, copied from the user's database when the job was created, so
    # edits made while it runs do not change it half way.
    params = models.JSONField(default=dict)
    # output_name (the rendered file in media storage), working_video_id / final_video_id,
    # committed_version (the user's snapshot version that holds the video)
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One active export per project and kind: a second request gets the running
            # job. The database enforces it, so two racing requests cannot both start one.
            models.UniqueConstraint(
                fields=["user", "project_id", "kind"],
                condition=Q(status__in=["pending", "processing"]),
                name="one_active_export_per_project_and_kind",
            )
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self):
        return (
            f"{self.get_kind_display()} of {self.project_name or self.project_id} ({self.status})"
        )

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    def to_message(self) -> dict:
        """The WebSocket message shape, also the body of GET /api/exports/<id>."""
        data = {
            "job_id": str(self.id),
            "kind": self.kind,
            "project_id": self.project_id,
            "status": self.status,
            "progress": self.progress,
            "phase": self.phase,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
        }
        # committed_version: the user's snapshot version that holds the video, so
        # "complete" says where it was saved (and a test can read it from the store).
        for key in (
            "working_video_id", "final_video_id", "game_id", "committed_version", "clip_id",
            "proposal",
        ):  # fmt: skip
            if key in self.result:
                data[key] = self.result[key]
        if self.cancel_requested and self.status in self.ACTIVE:
            data["cancel_requested"] = True  # still running: the render stops at its next check
        if self.status == self.Status.ERROR:
            data["error"] = self.error
            data["error_code"] = self.error_code
            data["retryable"] = self.retryable
        return data
