"""A user's editing data. These models live in that user's own SQLite database.

There is no user foreign key anywhere here: the database *is* the user's (see
syncstore/routers.py). Files (clips, rendered videos) live in media storage under the
user's prefix; the rows hold their storage names.
"""

from django.db import models
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from . import media

ASPECT_RATIOS = {
    # aspect ratio -> output size of the working video (width, height)
    "9:16": (1080, 1920),
    "16:9": (1920, 1080),
    "1:1": (1080, 1080),
    "4:5": (1080, 1350),
}


class ProjectQuerySet(models.QuerySet):
    def with_status(self):
        """Annotate the counts and flags the projects list shows, in one query."""
        # A clip is exported when its current edits are in a working video (exported
        # after its last edit) and in progress when it has edits no export has seen yet.
        exported = Q(clips__exported_at__isnull=False) & (
            Q(clips__edited_at__isnull=True) | Q(clips__exported_at__gte=F("clips__edited_at"))
        )
        in_progress = Q(clips__edited_at__isnull=False) & (
            Q(clips__exported_at__isnull=True) | Q(clips__edited_at__gt=F("clips__exported_at"))
        )
        return self.annotate(
            clip_count=Count("clips", distinct=True),
            clips_exported=Count("clips", filter=exported, distinct=True),
            clips_in_progress=Count("clips", filter=in_progress, distinct=True),
            has_overlay_edits=Exists(HighlightRegion.objects.filter(project=OuterRef("pk"))),
            has_final_video=Exists(FinalVideo.objects.filter(project=OuterRef("pk"))),
        ).order_by("-created_at", "-id")  # GROUP BY drops Meta.ordering


class Project(models.Model):
    class AspectRatio(models.TextChoices):
        PORTRAIT = "9:16", "9:16 (vertical)"
        LANDSCAPE = "16:9", "16:9 (landscape)"
        SQUARE = "1:1", "1:1 (square)"
        FOUR_FIVE = "4:5", "4:5 (portrait)"

    class Mode(models.TextChoices):
        FRAMING = "framing"
        OVERLAY = "overlay"

    name = models.CharField(max_length=200)
    aspect_ratio = models.CharField(max_length=8, choices=AspectRatio.choices)
    current_mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FRAMING)
    # The working video overlay mode edits; earlier ones stay as superseded rows.
    working_video = models.ForeignKey(
        "WorkingVideo", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    # The final video's presets (projects/presets.py): checked there, not by choices,
    # so the API can say which field was wrong.
    final_resolution = models.CharField(max_length=8, default="1080p")
    final_quality = models.CharField(max_length=10, default="standard")
    title_card = models.JSONField(default=dict, blank=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name

    def to_dict(self) -> dict:
        """The projects-list shape; needs the ``with_status()`` annotations."""
        width, height = self.output_size
        return {
            "id": self.id,
            "name": self.name,
            "aspect_ratio": self.aspect_ratio,
            "output_width": width,
            "output_height": height,
            "clip_count": self.clip_count,
            "clips_exported": self.clips_exported,
            "clips_in_progress": self.clips_in_progress,
            "has_working_video": self.working_video_id is not None,
            "has_overlay_edits": self.has_overlay_edits,
            "has_final_video": self.has_final_video,
            "current_mode": self.current_mode,
            "created_at": self.created_at.isoformat(),
            "last_opened_at": self.last_opened_at.isoformat() if self.last_opened_at else None,
        }

    @property
    def output_size(self) -> tuple[int, int]:
        return ASPECT_RATIOS[self.aspect_ratio]

    @property
    def aspect_value(self) -> float:
        width, height = self.output_size
        return width / height


class Clip(models.Model):
    """A source clip and its framing edits, in project order.

    Either an uploaded short clip (its own file), or a range of a game (``game``, with
    ``range_start``/``range_end`` in the game's seconds): the clip then names the
    game's file, never a copy of it, and every time of its edits (keyframes, trim,
    segments) is a time in the game's video, inside that range.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="clips")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=200)  # display only, never a filesystem path
    file = models.CharField(max_length=300)  # storage name under the user's prefix
    # PROTECT: a game its clips still use cannot go (the API says so first, clearly).
    game = models.ForeignKey(
        "games.Game", null=True, blank=True, on_delete=models.PROTECT, related_name="clips"
    )
    range_start = models.FloatField(null=True, blank=True)
    range_end = models.FloatField(null=True, blank=True)
    size_bytes = models.BigIntegerField()
    duration = models.FloatField()
    fps = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    frame_count = models.PositiveIntegerField()
    has_audio = models.BooleanField(default=False)
    # Framing edits. Times are seconds in the source clip, rectangles are source pixels.
    crop_keyframes = models.JSONField(default=list)  # [{time, x, y, width, height}]
    trim_start = models.FloatField(null=True, blank=True)
    trim_end = models.FloatField(null=True, blank=True)
    segments = models.JSONField(default=list)  # [{start, end, speed}]
    edited_at = models.DateTimeField(null=True, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.name

    @property
    def trim(self):
        if self.trim_start is None:
            return None
        return {"start": self.trim_start, "end": self.trim_end}

    @property
    def bounds(self) -> tuple[float, float]:
        """Where the clip's edits may lie, in source seconds: its range of a game, or
        the whole uploaded clip."""
        if self.game_id is not None:
            return self.range_start, self.range_end
        return 0.0, self.duration

    @property
    def owns_file(self) -> bool:
        """Whether the file is the clip's own (an upload), not its game's."""
        return self.game_id is None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "position": self.position,
            "url": media.url_for(self.file),
            "size_bytes": self.size_bytes,
            "duration": self.duration,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "frame_count": self.frame_count,
            "has_audio": self.has_audio,
            "game_id": self.game_id,
            "range": ({"start": self.range_start, "end": self.range_end} if self.game_id else None),
            "crop_keyframes": self.crop_keyframes,
            "trim": self.trim,
            "segments": self.segments,
            "edited_at": self.edited_at.isoformat() if self.edited_at else None,
            "exported_at": self.exported_at.isoformat() if self.exported_at else None,
        }


class RenderedVideo(models.Model):
    """Fields shared by the working and the final video."""

    file = models.CharField(max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration = models.FloatField()
    fps = models.FloatField()
    frame_count = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField()
    # The export job that rendered it; unique so finalizing a job twice is a no-op.
    export_job_id = models.CharField(max_length=64, unique=True)
    superseded = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.width}x{self.height}, {self.duration:.1f}s, {self.created_at:%Y-%m-%d %H:%M}"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "url": media.url_for(self.file),
            "width": self.width,
            "height": self.height,
            "duration": self.duration,
            "fps": self.fps,
            "frame_count": self.frame_count,
            "size_bytes": self.size_bytes,
            "superseded": self.superseded,
            "export_job_id": self.export_job_id,
            "created_at": self.created_at.isoformat(),
        }


class WorkingVideo(RenderedVideo):
    """The framing export: cropped, resized, concatenated clips."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="working_videos")


class FinalVideo(RenderedVideo):
    """The overlay export, shown in the gallery."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="final_videos")
    working_video = models.ForeignKey(
        WorkingVideo, null=True, blank=True, on_delete=models.SET_NULL, related_name="final_videos"
    )
    # A still made at export (exports/posters.py): the picture of its share page.
    poster = models.CharField(max_length=300, blank=True)


class HighlightRegion(models.Model):
    """A highlighted area on the working video: an ellipse that moves through keyframes."""

    class Effect(models.TextChoices):
        DIM_OUTSIDE = "dim_outside", "Spotlight (dim outside)"
        BRIGHTEN_INSIDE = "brighten_inside", "Brighten inside"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="highlight_regions")
    position = models.PositiveIntegerField()
    start = models.FloatField()
    end = models.FloatField()
    effect = models.CharField(max_length=32, choices=Effect.choices)
    color = models.CharField(max_length=7, default="#ffd400")
    stroke_width = models.PositiveIntegerField(default=4)
    keyframes = models.JSONField(default=list)  # [{time, x, y, rx, ry}] in working-video pixels

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"{self.get_effect_display()} {self.start:.1f}-{self.end:.1f}s"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "effect": self.effect,
            "color": self.color,
            "stroke_width": self.stroke_width,
            "keyframes": self.keyframes,
        }
