"""Shared types of the render pipelines (framing, overlay): specs in, results out.

The pipelines are plain functions over local files and these specs; they know nothing
of jobs, users, databases or storage, so they can be tested and benchmarked alone.
How they fail is in :mod:`exports.errors`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

# progress(done, total, phase): done/total in frames, phase a short word for the UI
ProgressCallback = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


def even_size(value: float) -> int:
    """A frame dimension as H.264 in yuv420p takes it: whole, even, at least 2 pixels
    (chroma is subsampled by two in each direction)."""
    number = max(2, round(value))
    return number - number % 2


@dataclass(frozen=True)
class ClipSpec:
    """One source clip and its framing edits; times in source seconds, source pixels."""

    path: str
    width: int
    height: int
    fps: float
    duration: float
    crop_keyframes: list = field(default_factory=list)
    trim: tuple[float, float] | None = None
    segments: list = field(default_factory=list)  # [{start, end, speed}]
    has_audio: bool = False


@dataclass(frozen=True)
class FramingSpec:
    clips: list
    output_width: int
    output_height: int
    fps: float | None = None  # None: the first clip's frame rate
    preset: str = "veryfast"
    crf: int = 20
    upscaler: object | None = None  # an exports.upscale.Upscaler, or None for Lanczos
    max_seconds: float | None = None  # render only the first N output seconds (mock mode)
    # Whether the output has a soundtrack (silence where a clip has none). None: when any
    # clip has sound. A segment of one clip (exports/segments.py) is told the export's.
    with_audio: bool | None = None


@dataclass(frozen=True)
class RenderResult:
    path: str
    width: int
    height: int
    duration: float
    fps: float
    frame_count: int
    size_bytes: int
    has_audio: bool


@dataclass(frozen=True)
class RegionSpec:
    """A plain copy of a ``projects.HighlightRegion`` row (times in s, working-video px)."""

    start: float
    end: float
    effect: str
    color: str
    stroke_width: int
    keyframes: list
