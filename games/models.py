"""Games and the plays marked in them. Like projects, these live in the user's own
SQLite database (settings.USER_DATABASE_APPS): no user foreign key, the database is the
user's. A game's video is stored once in media storage; plays are ranges of it.
"""

from django.db import models
from django.utils import timezone

from projects import media


class Game(models.Model):
    class Status(models.TextChoices):
        # The file is stored; its probe, poster and filmstrip are being made.
        PROCESSING = "processing"
        READY = "ready"
        # Not a usable video (the probe said why), or making the filmstrip failed.
        FAILED = "failed"

    name = models.CharField(max_length=200)
    played_on = models.DateField(null=True, blank=True)
    opponent = models.CharField(max_length=200, blank=True)
    # The chunked upload it came from (games/chunked.py): completing it twice finds this
    # game instead of making a second one.
    upload_id = models.CharField(max_length=32, unique=True)
    original_name = models.CharField(max_length=200)  # display only, never a path
    file = models.CharField(max_length=300)  # media name: users/<id>/games/<upload id>.<ext>
    size_bytes = models.BigIntegerField()
    # What the probe found; empty until the game's media job has run.
    duration = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    has_audio = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    status_message = models.CharField(max_length=300, blank=True)
    poster = models.CharField(max_length=300, blank=True)  # media name of a JPEG
    # {"file": <media name of the sprite JPEG>, "columns", "rows", "tile_width",
    #  "tile_height", "times": [seconds of each tile]}: one image for the whole strip.
    filmstrip = models.JSONField(default=dict, blank=True)
    media_job_id = models.CharField(max_length=64, blank=True)  # exports.ExportJob
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-played_on", "-created_at", "-id"]

    def __str__(self):
        return self.name

    @property
    def media_files(self) -> list[str]:
        """Every media file this game owns (the video, its poster and filmstrip)."""
        names = [self.file, self.poster, self.filmstrip.get("file", "")]
        return [name for name in names if name]

    def to_dict(self) -> dict:
        filmstrip = dict(self.filmstrip)
        if filmstrip.get("file"):
            filmstrip["url"] = media.url_for(filmstrip.pop("file"))
        return {
            "id": self.id,
            "name": self.name,
            "played_on": self.played_on.isoformat() if self.played_on else None,
            "opponent": self.opponent,
            "original_name": self.original_name,
            "url": media.url_for(self.file),
            "size_bytes": self.size_bytes,
            "duration": self.duration,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "frame_count": self.frame_count,
            "has_audio": self.has_audio,
            "status": self.status,
            "status_message": self.status_message,
            "poster_url": media.url_for(self.poster) if self.poster else None,
            "filmstrip": filmstrip or None,
            "media_job_id": self.media_job_id or None,
            "created_at": self.created_at.isoformat(),
        }


class Play(models.Model):
    """A range of a game worth keeping: a goal, a save, a run."""

    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="plays")
    start = models.FloatField()  # seconds in the game's video
    end = models.FloatField()
    name = models.CharField(max_length=200, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)  # 1-5
    tags = models.JSONField(default=list, blank=True)  # ["#7", "goal", ...]
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["game", "start", "id"]

    def __str__(self):
        return self.name or f"{self.start:.1f}-{self.end:.1f}s"

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "game_id": self.game_id,
            "start": self.start,
            "end": self.end,
            "duration": round(self.duration, 3),
            "name": self.name,
            "rating": self.rating,
            "tags": self.tags,
            "created_at": self.created_at.isoformat(),
        }
