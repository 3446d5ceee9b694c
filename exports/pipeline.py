"""Framing export: source clips -> one cropped, resized, concatenated H.264 working video.

:func:`render_framing` is the public seam (used by the export task, the bench and the
tests); copying a finished video without re-encoding is :func:`exports.media_io.remux`.

How a render runs (three threads, two small queues: :mod:`exports.stages`)::

    decode thread --[3 frames]--> calling thread --[3 frames]--> encode thread
    demux + decode                pick frame, crop,              x264 (frame threads),
    (FFmpeg threads)              swscale Lanczos, audio         AAC, mux

- The calling thread does the per-frame work that needs the plan: it maps each output
  frame to a source time (:mod:`exports.timeline`), takes the latest decoded frame at or
  before it, crops the Y/U/V planes in numpy and scales with swscale, staying in yuv420p
  all the way (converting to BGR and resizing with OpenCV halves the throughput). It is
  also the only thread that calls ``progress`` and ``should_cancel``, so a caller's
  context variables (the bound user) are what those callbacks see.
- Crop rectangles are rounded as FFmpeg's crop filter does: nearest integer, then down
  to even numbers (x, y, width, height), clamped to the frame; a 9:16 window on a 1080p
  source is 608x1080.
- Frames handed to x264 have their picture type reset, or x264 would copy the source's
  keyframes; the encoder uses frame threads (PyAV's default, slice threads, is slower).
- Any failure stops both workers, removes the partial output, and surfaces as a
  :class:`~exports.errors.RenderError` with a code: ``source_missing``,
  ``source_corrupt``, ``encode_failed``, ``disk_full`` (or ``upscale_failed``,
  ``invalid_edit``).
"""

import contextlib
import logging
import os
import queue
import threading
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from . import media_io, stages, timeline
from .errors import RenderCancelled, RenderError, failure, render_error
from .interpolation import CropPath
from .render import CancelCheck, FramingSpec, ProgressCallback, RenderResult

logger = logging.getLogger(__name__)

# Frames waiting between two stages. Two to four keeps every stage busy; more only
# costs memory (a 1080x1920 yuv420p frame is 3 MB).
QUEUE_FRAMES = 3
# should_cancel() is asked every this many output frames.
CANCEL_EVERY = 5
# Frames per call to the AI upscaler when the spec has none of its own (batch_size).
UPSCALE_BATCH = 4
# A source whose frames stop this much before what the clip's duration promised is
# truncated, not just a little short (some containers round durations up).
MAX_MISSING_SECONDS = 0.5
# swscale threads for the Lanczos resize. One: it already runs beside the decoder's and
# x264's threads, and a single-threaded 608x1080 -> 1080x1920 Lanczos (~3-4 ms) keeps up
# with x264 at any preset; slice threads (0 = one per core) measured 10-25% slower
# end to end at ultrafast on 2 cores.
SCALE_THREADS = 1


def render_framing(
    spec: FramingSpec,
    output_path,
    *,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> RenderResult:
    """Render ``spec``'s clips into one H.264/AAC MP4 at ``output_path``.

    The file appears at ``output_path`` only when complete (written next to it under a
    temporary name, then renamed). ``progress(done, total, phase)`` is called for every
    output frame ("rendering") and once more before the file is finalized
    ("finishing"); ``should_cancel()`` is polled every few frames and, when true, the
    render stops and :class:`RenderCancelled` is raised. Both are called on the calling
    thread only.
    """
    width, height = spec.output_width, spec.output_height
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise ValueError(f"output size must be positive and even, got {width}x{height}")
    for clip in spec.clips:
        if not os.path.isfile(clip.path):
            raise failure("source_missing")
    plan = timeline.plan(spec)
    output_path = Path(output_path)
    with media_io.replaced_when_done(output_path) as tmp_name:
        _Render(spec, plan, tmp_name, progress, should_cancel).run()
    return media_io.probe_result(output_path)


def even_crop(rect: dict, frame_width: int, frame_height: int) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of a crop rectangle rounded like FFmpeg's crop filter.

    Nearest integer (half to even, as C's lrint), width and height down to even and at
    least 2, x and y clamped into the frame and then down to even, so the 4:2:0 chroma
    planes crop at whole samples.
    """
    max_w, max_h = frame_width & ~1, frame_height & ~1
    w = min(max(round(rect["width"]) & ~1, 2), max_w)
    h = min(max(round(rect["height"]) & ~1, 2), max_h)
    x = min(max(round(rect["x"]), 0), frame_width - w) & ~1
    y = min(max(round(rect["y"]), 0), frame_height - h) & ~1
    return x, y, w, h


def crop_yuv420p(frame: av.VideoFrame, x: int, y: int, w: int, h: int) -> av.VideoFrame:
    """A new yuv420p frame holding ``frame``'s ``(x, y, w, h)`` window (even numbers)."""
    out = av.VideoFrame(w, h, "yuv420p")
    boxes = ((x, y, w, h), (x // 2, y // 2, w // 2, h // 2), (x // 2, y // 2, w // 2, h // 2))
    for src_plane, dst_plane, (bx, by, bw, bh) in zip(frame.planes, out.planes, boxes, strict=True):
        src = np.frombuffer(src_plane, np.uint8).reshape(-1, src_plane.line_size)
        dst = np.frombuffer(dst_plane, np.uint8).reshape(-1, dst_plane.line_size)
        dst[:bh, :bw] = src[by : by + bh, bx : bx + bw]
    return out


# --- internals ----------------------------------------------------------------------


def _make_queue() -> queue.Queue:
    return queue.Queue(maxsize=QUEUE_FRAMES)


def _stage_errors(code: str):
    """How a stage's failure is raised: a RenderError with ``code`` (or ``disk_full``)."""

    def translate(exc: BaseException) -> RenderError:
        if not isinstance(exc, (RenderError, av.FFmpegError, OSError)):
            logger.exception("%s failed", threading.current_thread().name)
        return render_error(exc, code)

    return translate


def _crop_path(clip, aspect: float) -> CropPath:
    """The clip's crop path; keyframes out of order would interpolate nonsense."""
    try:
        times = [float(k["time"]) for k in clip.crop_keyframes]
        if any(b <= a for a, b in pairwise(times)):
            raise ValueError("crop keyframe times must increase")
        return CropPath(clip.crop_keyframes, clip.width, clip.height, aspect=aspect)
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise failure("invalid_edit") from exc


class _Decoder:
    """Body of the decode thread: every needed clip's frames, in order, into ``out``.

    Puts ``(source_time, frame)`` for frames from the last one at or before the clip's
    first needed time up to the first one after its last needed time, then ``END``.
    """

    def __init__(self, spec, plan, out: queue.Queue, line: stages.Stages):
        self.spec, self.plan, self.out, self.line = spec, plan, out, line

    def __call__(self):
        for index, clip in enumerate(self.spec.clips):
            count = self.plan.frames_of(index)
            if count == 0:
                continue
            clip_plan = self.plan.clips[index]
            first = clip_plan.first_source_time
            last = clip_plan.source_time(count - 1)
            seek = first if first > media_io.SEEK_AFTER_SECONDS else None
            if not self._decode(clip.path, first, last, seek):
                # The seek landed past the start (a bad index): decode from the top.
                self._decode(clip.path, first, last, None)
            self.line.put(self.out, stages.END)

    def _decode(self, path, first: float, last: float, seek: float | None) -> bool:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = media_io.video_stream(container)
            stream.thread_type = "AUTO"
            origin = media_io.stream_origin(stream)
            rate = float(stream.average_rate or stream.guessed_rate or 30)
            if seek is not None:
                container.seek(int((origin + seek) / stream.time_base), stream=stream)
            held = None  # the latest frame at or before ``first``, not sent yet
            sent = 0
            for number, frame in enumerate(container.decode(stream)):
                self.line.raise_if_stopped()
                t = frame.time - origin if frame.time is not None else number / rate
                if t <= first + timeline.EPSILON:
                    held = (t, frame)
                    continue
                if seek is not None and held is None and sent == 0:
                    return False  # the seek overshot: nothing at or before ``first``
                if held is not None:
                    self._send(held)
                    held, sent = None, sent + 1
                self._send((t, frame))
                sent += 1
                if t > last + timeline.EPSILON:
                    return True
            if held is not None:
                self._send(held)
                sent += 1
            if sent == 0:
                raise failure("source_corrupt")
            return True

    def _send(self, item):
        t, frame = item
        if frame.format.name != "yuv420p":
            # Full range, 4:2:2, 10 bits...: convert once, then the fast path applies.
            frame = frame.reformat(format="yuv420p")
        self.line.put(self.out, (t, frame))


class _Encoder:
    """Body of the encode thread: ``(frame, audio)`` items in, muxed packets out."""

    def __init__(self, container, video, audio, source: queue.Queue, line: stages.Stages):
        self.container, self.video, self.audio = container, video, audio
        self.source, self.line = source, line
        self.frames = 0
        self.samples = 0

    def __call__(self):
        mux = self.container.mux
        for frame, sound in self.line.items(self.source):
            frame.pts = self.frames
            frame.pict_type = av.video.frame.PictureType.NONE
            mux(self.video.encode(frame))
            self.frames += 1
            if self.audio is not None and sound is not None and sound.shape[1]:
                mux(self.audio.encode(media_io.audio_frame(sound, self.samples)))
                self.samples += sound.shape[1]
        mux(self.video.encode(None))
        if self.audio is not None:
            mux(self.audio.encode(None))


class _Render:
    """One run of :func:`render_framing` (the calling thread's side)."""

    def __init__(self, spec: FramingSpec, plan, tmp_name, progress, should_cancel):
        self.spec, self.plan, self.tmp_name = spec, plan, tmp_name
        self.progress = progress or (lambda done, total, phase: None)
        self.should_cancel = should_cancel or (lambda: False)
        self.width, self.height = spec.output_width, spec.output_height
        self.with_audio = (
            spec.with_audio
            if spec.with_audio is not None
            else any(clip.has_audio for clip in spec.clips)
        )
        self.line = stages.Stages()
        self.decoded = _make_queue()
        self.encoded = _make_queue()
        self.done = 0
        self.batch = []  # (cropped rgb, audio) waiting for the upscaler
        self.audio = None  # the current clip's media_io.AudioReader
        # One scaler for the whole render: it keeps its swscale context (Lanczos filter
        # tables) while the crop size stays the same; a fresh one per frame costs 4x.
        self.scaler = VideoReformatter()

    def run(self):
        total = self.plan.total_frames
        self.progress(0, total, "rendering")
        if self.should_cancel():
            raise RenderCancelled()
        try:
            container = media_io.open_output(self.tmp_name)
        except (av.FFmpegError, OSError) as exc:
            raise render_error(exc, "encode_failed") from exc
        finished = False
        try:
            with self.line:  # leaving it stops and joins both workers
                self._start_workers(container)
                self.line.run(self._render_and_flush, silent_stop=failure("encode_failed"))
                finished = True
        finally:
            if self.audio is not None:
                self.audio.close()
            self._close(container, finished)

    def _start_workers(self, container):
        video, audio = self._add_streams(container)
        decoder = _Decoder(self.spec, self.plan, self.decoded, self.line)
        encoder = _Encoder(container, video, audio, self.encoded, self.line)
        self.line.start("framing-decode", decoder, _stage_errors("source_corrupt"))
        self.encoding = self.line.start("framing-encode", encoder, _stage_errors("encode_failed"))

    def _render_and_flush(self):
        self._render_all()
        self.line.put(self.encoded, stages.END)
        total = self.plan.total_frames
        self.progress(total, total, "finishing")
        self.encoding.join()  # until the encoder has flushed x264 and AAC

    def _close(self, container, finished):
        if not finished:
            # The file is about to be deleted; just release it (and x264's threads).
            with contextlib.suppress(Exception):
                container.close()
            return
        try:
            container.close()  # writes the index, then moves it to the front (faststart)
        except (av.FFmpegError, OSError) as exc:
            raise render_error(exc, "encode_failed") from exc

    def _add_streams(self, container):
        rate = self.plan.fps
        video = media_io.add_h264(
            container, rate=rate, width=self.width, height=self.height,
            crf=self.spec.crf, preset=self.spec.preset, time_base=1 / rate,
        )  # fmt: skip
        audio = media_io.add_aac(container) if self.with_audio else None
        return video, audio

    def _render_all(self):
        aspect = self.width / self.height
        for index, clip in enumerate(self.spec.clips):
            count = self.plan.frames_of(index)
            if count == 0:
                continue
            clip_plan = self.plan.clips[index]
            crop_path = _crop_path(clip, aspect)
            self._open_audio(clip, clip_plan)
            self._render_clip(index, clip, clip_plan, crop_path, count)
            if self.audio is not None:
                self.audio.close()
                self.audio = None
        self._flush_upscale()

    def _open_audio(self, clip, clip_plan):
        if self.with_audio and clip.has_audio:
            self.audio = media_io.open_audio(clip.path, clip_plan.first_source_time)

    def _render_clip(self, index, clip, clip_plan, crop_path, count):
        fps = self.plan.fps
        first_frame = self.plan.first_frames[index]
        clip_sample0 = timeline.sample_at(first_frame, fps)
        runs = clip_plan.audio_runs() if self.audio is not None else []
        source_rate = clip.fps or float(fps)
        max_missing = max(MAX_MISSING_SECONDS, 3 / source_rate)
        current = pending = None
        exhausted = False
        previous = (None, None, None)
        for j in range(count):
            if j % CANCEL_EVERY == 0 and self.should_cancel():
                raise RenderCancelled()
            s = clip_plan.source_time(j)
            # The latest decoded frame at or before s (or the first one, if none is).
            while not exhausted:
                if pending is None:
                    item = self.line.get(self.decoded)
                    if item is stages.END:
                        exhausted = True
                        break
                    pending = item
                if current is None or pending[0] <= s + timeline.EPSILON:
                    current, pending = pending, None
                else:
                    break
            if current is None:
                raise failure("source_corrupt")
            if exhausted and s - current[0] > max_missing:
                raise RenderError(
                    "A source clip of this export ends before its stated length; "
                    "it may be truncated.",
                    "source_corrupt",
                )
            frame = current[1]
            box = even_crop(crop_path.at(s), frame.width, frame.height)
            sound = None
            if self.with_audio:
                start = timeline.sample_at(first_frame + j, fps)
                end = timeline.sample_at(first_frame + j + 1, fps)
                sound = self._sound(runs, start - clip_sample0, end - start)
            if self.spec.upscaler is not None:
                self._upscale_frame(frame, box, sound)
                continue
            if frame is previous[0] and box == previous[1]:
                # Slow motion with a still window: the same picture again (the encoder
                # copies each picture it is given, so one object can go twice).
                out = previous[2]
            else:
                out = self.scaler.reformat(
                    crop_yuv420p(frame, *box),
                    self.width,
                    self.height,
                    format="yuv420p",
                    interpolation="LANCZOS",
                    threads=SCALE_THREADS,
                )
                previous = (frame, box, out)
            self._emit(out, sound)
        # Let the decoder move on to the next clip: skip what it read past our end.
        while not exhausted:
            if self.line.get(self.decoded) is stages.END:
                exhausted = True

    def _sound(self, runs, start, count) -> np.ndarray:
        """Output samples ``[start, start + count)`` of the clip: source sound or silence."""
        out = np.zeros((2, count), np.float32)
        end = start + count
        for run_start, run_end, source in runs:
            lo, hi = max(start, run_start), min(end, run_end)
            if source is None or hi <= lo:
                continue
            out[:, lo - start : hi - start] = self.audio.read(source + lo - run_start, hi - lo)
        return out

    def _emit(self, frame, sound):
        self.line.put(self.encoded, (frame, sound))
        self.done += 1
        self.progress(self.done, self.plan.total_frames, "rendering")

    # --- AI upscaling: simple and correct rather than fast (the model dominates) ---

    def _upscale_frame(self, frame, box, sound):
        rgb = crop_yuv420p(frame, *box).to_ndarray(format="rgb24")
        self.batch.append((rgb, sound))
        size = getattr(self.spec.upscaler, "batch_size", None) or UPSCALE_BATCH
        if len(self.batch) >= size:
            self._flush_upscale()

    def _flush_upscale(self):
        if not self.batch:
            return
        import cv2

        batch, self.batch = self.batch, []
        try:
            upscaled = self.spec.upscaler.upscale([rgb for rgb, _ in batch])
        except RenderError:
            raise
        except Exception as exc:
            logger.exception("upscaler failed")
            raise failure("upscale_failed") from exc
        if len(upscaled) != len(batch):
            raise failure("upscale_failed")
        for image, (_, sound) in zip(upscaled, batch, strict=True):
            image = np.ascontiguousarray(image, dtype=np.uint8)
            if image.shape[:2] != (self.height, self.width):
                image = cv2.resize(
                    image, (self.width, self.height), interpolation=cv2.INTER_LANCZOS4
                )
            out = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            self._emit(out, sound)
