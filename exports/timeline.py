"""Where each output frame and audio sample of a framing export comes from.

A clip's framing edits (trim, slow-motion segments) turn its source time into a run of
*pieces*: stretches of source time played at one speed. The output timeline is the
pieces of every clip, one after the other, sampled at the output frame rate:

- output frame ``j`` of a clip shows the latest source frame at or before
  :meth:`ClipTimeline.source_time` of ``j`` (this also handles clips whose frame rate
  differs from the output's);
- audio samples of 1x pieces come from the source; slow-motion pieces are silent.

Trim and segment boundaries are snapped up to the source frame grid (the first frame at
or after the boundary), so "frames in ``[start, end)``" is exact: at matching frame
rates every source frame of a 1x piece appears once and of a 0.5x piece twice.

Pure arithmetic, no video: the renderer and its tests share it.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

AUDIO_RATE = 48000
# Tolerance for float noise in times (seconds); far below any frame duration.
EPSILON = 1e-6


@dataclass(frozen=True)
class Piece:
    """Source time ``[source_start, source_end)`` played at ``speed`` from ``output_start``."""

    source_start: float
    source_end: float
    speed: float
    output_start: float  # seconds from the start of the clip's part of the output

    @property
    def output_duration(self) -> float:
        return (self.source_end - self.source_start) / self.speed


@dataclass(frozen=True)
class ClipTimeline:
    pieces: tuple[Piece, ...]
    fps: Fraction  # output frame rate
    frame_count: int  # output frames this clip contributes

    @property
    def output_duration(self) -> float:
        return sum(p.output_duration for p in self.pieces)

    @property
    def last_source_time(self) -> float:
        """The source time of the clip's last output frame (decoding can stop after it)."""
        if not self.frame_count:
            return 0.0
        return self.source_time(self.frame_count - 1)

    @property
    def first_source_time(self) -> float:
        return self.pieces[0].source_start if self.pieces else 0.0

    def piece_at(self, local_time: float) -> Piece:
        """The piece playing at ``local_time`` output seconds into the clip."""
        for piece in self.pieces:
            if local_time < piece.output_start + piece.output_duration - EPSILON:
                return piece
        return self.pieces[-1]

    def source_time(self, frame: int) -> float:
        """Source time shown by the clip's output frame ``frame`` (0-based)."""
        local = float(frame / self.fps)
        piece = self.piece_at(local)
        source = piece.source_start + (local - piece.output_start) * piece.speed
        # The last frame may round past the end; it then holds the end of the piece.
        return min(source, piece.source_end)

    def audio_runs(self, rate: int = AUDIO_RATE) -> list[tuple[int, int, int | None]]:
        """``(output_start, output_end, source_start)`` in samples; source None = silence.

        Output samples count from the clip's first output sample, source samples from
        source time 0. Only 1x pieces carry sound; slow motion is silent.
        """
        runs = []
        for piece in self.pieces:
            start = round(piece.output_start * rate)
            end = round((piece.output_start + piece.output_duration) * rate)
            if end <= start:
                continue
            source = round(piece.source_start * rate) if piece.speed == 1 else None
            runs.append((start, end, source))
        return runs


def output_rate(fps: float) -> Fraction:
    """A frame rate as an exact fraction (29.97 -> 30000/1001)."""
    if not fps or fps <= 0 or not math.isfinite(fps):
        raise ValueError(f"frame rate must be positive, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def snap_to_frame(t: float, fps: float) -> float:
    """The time of the first source frame at or after ``t`` (frames at ``k / fps``)."""
    return math.ceil(t * fps - EPSILON) / fps


def trim_range(clip) -> tuple[float, float]:
    """The clip's trim as ``(start, end)`` source seconds; no trim = the whole clip."""
    start, end = 0.0, float(clip.duration)
    trim = clip.trim
    if isinstance(trim, dict):
        trim = (trim.get("start"), trim.get("end"))
    if trim:
        if trim[0] is not None:
            start = max(start, float(trim[0]))
        if len(trim) > 1 and trim[1] is not None:
            end = min(end, float(trim[1]))
    return start, end


def clip_timeline(clip, fps: Fraction) -> ClipTimeline:
    """The pieces of ``clip`` (a :class:`~exports.render.ClipSpec`) on an ``fps`` output."""
    source_fps = clip.fps or float(fps)
    start, end = (snap_to_frame(t, source_fps) for t in trim_range(clip))
    # Slow-motion segments inside the trim, in order; overlaps go to the earlier one.
    pieces, cursor, output = [], start, 0.0

    def add(source_end, speed):
        nonlocal cursor, output
        if source_end - cursor > EPSILON:
            piece = Piece(cursor, source_end, speed, output)
            pieces.append(piece)
            output += piece.output_duration
        cursor = max(cursor, source_end)

    for segment in sorted(clip.segments or [], key=lambda s: float(s["start"])):
        speed = float(segment.get("speed", 1) or 1)
        if speed <= 0:
            raise ValueError(f"segment speed must be positive, got {speed!r}")
        seg_start = min(max(snap_to_frame(float(segment["start"]), source_fps), cursor), end)
        seg_end = min(snap_to_frame(float(segment["end"]), source_fps), end)
        if seg_end - seg_start <= EPSILON:
            continue
        add(seg_start, 1.0)
        add(seg_end, speed)
    add(end, 1.0)
    # Merge neighbours of equal speed (a 1x "segment" is the same as no segment).
    merged = []
    for piece in pieces:
        if merged and merged[-1].speed == piece.speed:
            last = merged.pop()
            piece = Piece(last.source_start, piece.source_end, piece.speed, last.output_start)
        merged.append(piece)
    duration = sum(p.output_duration for p in merged)
    frame_count = max(0, math.ceil(duration * fps - EPSILON)) if merged else 0
    return ClipTimeline(tuple(merged), fps, frame_count)


@dataclass(frozen=True)
class Plan:
    """The whole export: the clips' timelines and where each starts on the output."""

    fps: Fraction
    clips: tuple[ClipTimeline, ...]
    first_frames: tuple[int, ...]  # global index of each clip's first output frame
    total_frames: int  # after max_seconds

    def frames_of(self, index: int) -> int:
        """How many output frames clip ``index`` contributes after max_seconds."""
        return max(
            0, min(self.clips[index].frame_count, self.total_frames - self.first_frames[index])
        )


def plan(spec) -> Plan:
    """Timelines of every clip of a :class:`~exports.render.FramingSpec`."""
    if not spec.clips:
        raise ValueError("an export needs at least one clip")
    fps = output_rate(spec.fps or spec.clips[0].fps)
    clips = tuple(clip_timeline(clip, fps) for clip in spec.clips)
    firsts, total = [], 0
    for clip in clips:
        firsts.append(total)
        total += clip.frame_count
    if spec.max_seconds is not None:
        total = min(total, max(1, math.ceil(spec.max_seconds * fps - EPSILON)))
    return Plan(fps, clips, tuple(firsts), total)


def sample_at(frame: int, fps: Fraction, rate: int = AUDIO_RATE) -> int:
    """The first audio sample of output frame ``frame`` (exact, no drift)."""
    return round(Fraction(frame) * rate / fps)
