"""Framing exports by segments: one rendered segment per clip, reused while its edits
and source stay the same, joined without re-encoding the video.

A reel of many plays is edited and re-exported often, and most of its clips have not
changed since the last export. Each clip is rendered alone (:func:`render_framing` with
one clip, the export's frame rate, size, preset and soundtrack) into a segment named by
a hash of everything that decides its pixels and sound (:func:`segment_key`). A
re-export finds the unchanged ones in the cache and renders only the others; the join
copies every segment's H.264 packets as they are, one after the other (x264 with the
same settings writes the same sequence headers, which the join checks), and encodes the
soundtrack once more from the segments' decoded sound, cut to each segment's video.

The cache is a folder on the machine that renders (``EXPORT_SEGMENT_CACHE_DIR``), kept
under ``EXPORT_SEGMENT_CACHE_BYTES`` by removing the least recently used segments. It
is only a cache: a worker without the segment renders it, and nothing durable depends
on it, so it needs no sync and no clean-up when projects go.
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from . import media_io, timeline
from .errors import render_error
from .pipeline import render_framing
from .render import FramingSpec, RenderResult

logger = logging.getLogger(__name__)

# Bump when the pipeline's output for the same inputs changes: old segments then miss.
SEGMENT_FORMAT = 1


class SegmentCache:
    """Rendered segments in a local folder, least recently used out beyond ``max_bytes``."""

    def __init__(self, folder, max_bytes: int):
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.mp4"

    def get(self, key: str) -> Path | None:
        path = self.path(key)
        try:
            os.utime(path)  # used now: the last to be evicted
        except FileNotFoundError:
            return None
        return path

    def put(self, key: str, rendered: Path) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        os.replace(rendered, path)  # whole or not at all (rendered sits in the same folder)
        return path

    def scratch(self) -> Path:
        """A name in the cache's folder for a segment being rendered."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".rendering-", suffix=".mp4", dir=self.folder)
        os.close(fd)
        return Path(name)

    def evict(self, keep: set[Path]) -> None:
        """Remove the least recently used segments beyond ``max_bytes``, never ``keep``
        (the segments of the export that is being joined)."""
        entries = []
        for path in self.folder.glob("*.mp4"):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            if path not in keep:
                path.unlink(missing_ok=True)
                total -= size


def segment_key(spec: FramingSpec, index: int, source_id: str) -> str:
    """What decides clip ``index``'s segment, hashed: its source (``source_id``, a
    storage name, which never changes content), its edits and the export's format."""
    clip = spec.clips[index]
    fps = timeline.output_rate(spec.fps or spec.clips[0].fps)
    upscaler = None
    if spec.upscaler is not None:  # which model, and how it runs
        upscaler = {
            k: getattr(spec.upscaler, k, None) for k in ("model", "dtype", "tile", "overlap")
        }
    described = {
        "format": SEGMENT_FORMAT,
        "source": source_id,
        "clip": {**asdict(clip), "path": None},
        "output": [spec.output_width, spec.output_height, str(fps)],
        "encoder": [spec.preset, spec.crf],
        "audio": _with_audio(spec),
        "upscaler": upscaler,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def _with_audio(spec: FramingSpec) -> bool:
    if spec.with_audio is not None:
        return spec.with_audio
    return any(clip.has_audio for clip in spec.clips)


def render_by_segments(
    spec: FramingSpec,
    output_path,
    *,
    cache: SegmentCache,
    source_ids: list[str],
    fetch=None,
    progress=None,
    should_cancel=None,
) -> tuple[RenderResult, int]:
    """Render ``spec`` as one segment per clip (reusing cached ones) joined into
    ``output_path``. Returns the result and how many segments were rendered now.

    ``source_ids[i]`` names clip i's source for the cache key; ``fetch(i)``, when
    given, returns the local path of that source, asked only when the clip's segment
    must be rendered (the clips' own paths are used otherwise)."""
    progress = progress or (lambda done, total, phase: None)
    plan = timeline.plan(spec)
    total = plan.total_frames
    fps = plan.fps
    segments, rendered, done = [], 0, 0
    for index, clip in enumerate(spec.clips):
        frames = plan.frames_of(index)
        key = segment_key(spec, index, source_ids[index])
        path = cache.get(key)
        if path is None:
            if fetch is not None:
                clip = replace(clip, path=fetch(index))
            scratch = _render_one(spec, clip, fps, cache, done, total, progress, should_cancel)
            path = cache.put(key, scratch)
            rendered += 1
        segments.append((path, frames))
        done += frames
        progress(done, total, "rendering")
    progress(total, total, "finishing")
    with media_io.replaced_when_done(output_path) as tmp_name:
        join(segments, tmp_name, fps=fps, with_audio=_with_audio(spec))
    cache.evict(keep={path for path, _frames in segments})
    return media_io.probe_result(output_path), rendered


def _render_one(spec, clip, fps, cache, done, total, progress, should_cancel) -> Path:
    one = replace(spec, clips=[clip], fps=float(fps), with_audio=_with_audio(spec))
    scratch = cache.scratch()
    try:
        render_framing(
            one,
            scratch,
            progress=lambda d, _t, phase: progress(done + d, total, phase),
            should_cancel=should_cancel,
        )
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return scratch


def join(segments: list[tuple[Path, int]], output_name, *, fps: Fraction, with_audio: bool):
    """Write the segments (path, video frames) one after another into ``output_name``:
    the video's packets copied, the sound decoded, cut to each segment and encoded once."""
    try:
        _join(segments, output_name, fps, with_audio)
    except (av.FFmpegError, OSError) as exc:
        raise render_error(exc, "encode_failed") from exc


def _join(segments, output_name, fps, with_audio):
    first_path = segments[0][0]
    with av.open(str(first_path)) as first:
        template = first.streams.video[0]
        output = media_io.open_output(output_name)
        with contextlib.closing(output):
            video = output.add_stream_from_template(template)
            headers = bytes(template.codec_context.extradata or b"")
            audio = media_io.add_aac(output) if with_audio else None
            offset = 0  # output frames written so far
            sound_at = 0  # output audio samples written so far
            for path, frames in segments:
                with av.open(str(path)) as source:
                    _copy_video(source, video, output, offset / fps, headers)
                if audio is not None:  # a second pass: the first read the file to its end
                    with av.open(str(path)) as source:
                        until = timeline.sample_at(offset + frames, fps)
                        sound_at = _copy_sound(source, audio, output, sound_at, until)
                offset += frames
            if audio is not None:
                for packet in audio.encode(None):
                    output.mux(packet)


def _copy_video(source, video, output, offset: Fraction, headers: bytes) -> None:
    """Copy the segment's video packets, moved ``offset`` seconds later."""
    stream = source.streams.video[0]
    if bytes(stream.codec_context.extradata or b"") != headers:
        # Another x264 build or setting: copying would make an undecodable file.
        raise OSError("segments differ in their H.264 sequence headers")
    shift = round(offset / stream.time_base)
    for packet in source.demux(stream):
        if packet.dts is None:
            continue
        packet.pts += shift
        packet.dts += shift
        packet.stream = video
        output.mux(packet)


def _copy_sound(source, audio, output, written: int, until: int) -> int:
    """Encode the segment's sound (silence if it has none) up to output sample ``until``."""
    if source.streams.audio:
        for frame in source.decode(source.streams.audio[0]):
            sound = frame.to_ndarray().astype(np.float32)
            if sound.shape[0] == 1:
                sound = np.repeat(sound, 2, axis=0)
            sound = sound[:, : max(0, until - written)]
            if sound.shape[1]:
                written = _encode_sound(audio, output, sound, written)
    if until > written:
        written = _encode_sound(audio, output, np.zeros((2, until - written), np.float32), written)
    return written


def _encode_sound(audio, output, sound, written: int) -> int:
    for packet in audio.encode(media_io.audio_frame(np.ascontiguousarray(sound), written)):
        output.mux(packet)
    return written + sound.shape[1]


def clear(cache: SegmentCache) -> None:
    """Empty the cache (tests, benchmarks)."""
    shutil.rmtree(cache.folder, ignore_errors=True)
