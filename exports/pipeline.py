"""Framing export: source clips -> one cropped, resized, concatenated H.264 working video.

:func:`render_framing` is the public seam (used by the export task, the bench and the
tests); :func:`remux` copies a finished video into a faststart MP4 without re-encoding.

How a render runs (three threads, two small queues, so memory does not grow with the
length of the clips and decoding, scaling and encoding overlap on several cores)::

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
  :class:`~exports.render.RenderError` with a code: ``source_missing``,
  ``source_corrupt``, ``encode_failed``, ``disk_full`` (or ``upscale_failed``,
  ``invalid_edit``).
"""

import contextlib
import errno
import logging
import os
import queue
import tempfile
import threading
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from . import timeline
from .interpolation import CropPath
from .render import (
    CancelCheck,
    FramingSpec,
    ProgressCallback,
    RenderCancelled,
    RenderError,
    RenderResult,
)

logger = logging.getLogger(__name__)

# Frames waiting between two stages. Two to four keeps every stage busy; more only
# costs memory (a 1080x1920 yuv420p frame is 3 MB).
QUEUE_FRAMES = 3
# How long a blocked stage waits before looking at the stop flag again (seconds).
POLL_SECONDS = 0.05
# should_cancel() is asked every this many output frames.
CANCEL_EVERY = 5
# Frames per call to the AI upscaler when the spec has none of its own (batch_size).
UPSCALE_BATCH = 4
# Seeking to a trim start is worth it past this many seconds of source.
SEEK_AFTER_SECONDS = 2.0
# A source whose frames stop this much before what the clip's duration promised is
# truncated, not just a little short (some containers round durations up).
MAX_MISSING_SECONDS = 0.5
# swscale threads for the Lanczos resize. One: it already runs beside the decoder's and
# x264's threads, and a single-threaded 608x1080 -> 1080x1920 Lanczos (~3-4 ms) keeps up
# with x264 at any preset; slice threads (0 = one per core) measured 10-25% slower
# end to end at ultrafast on 2 cores.
SCALE_THREADS = 1
# How long stopping waits for a worker thread before giving up on it (seconds).
JOIN_SECONDS = 30.0

AUDIO_RATE = timeline.AUDIO_RATE
AUDIO_BIT_RATE = 160_000
# A jump in a source's audio timestamps longer than this is not filled with silence.
MAX_AUDIO_GAP = 60 * AUDIO_RATE

_END = object()  # end of one clip's frames in the decode queue / of the encode queue

MESSAGES = {
    "source_missing": "A source clip of this export is missing. Please upload it again.",
    "source_corrupt": "A source clip of this export could not be decoded; it may be damaged.",
    "encode_failed": "The video could not be encoded.",
    "disk_full": "The server ran out of disk space while writing the video.",
    "upscale_failed": "AI upscaling failed.",
    "invalid_edit": "The crop keyframes of a clip are invalid; please edit them again.",
}


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
            raise RenderError(MESSAGES["source_missing"], "source_missing")
    plan = timeline.plan(spec)
    output_path = Path(output_path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent
    )
    os.close(fd)
    render = _Render(spec, plan, tmp_name, progress, should_cancel)
    try:
        render.run()
        os.replace(tmp_name, output_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return probe_result(output_path)


def remux(src, dst) -> RenderResult:
    """Copy ``src``'s video and audio into a faststart MP4 at ``dst``, without re-encoding."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise RenderError(MESSAGES["source_missing"], "source_missing")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        try:
            source = av.open(str(src), metadata_errors="ignore")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise _error(exc, "source_corrupt") from exc
        with source, contextlib.closing(_open_output(tmp_name)) as output:
            streams = {}
            for stream in (*source.streams.video[:1], *source.streams.audio[:1]):
                streams[stream.index] = output.add_stream_from_template(stream)
            try:
                for packet in source.demux(*(source.streams[i] for i in streams)):
                    # The demuxer ends each stream with an empty packet: nothing to copy.
                    if packet.dts is None:
                        continue
                    packet.stream = streams[packet.stream.index]
                    output.mux(packet)
            except (av.FFmpegError, OSError) as exc:
                raise _error(exc, "encode_failed") from exc
        os.replace(tmp_name, dst)
    except RenderError:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    except (av.FFmpegError, OSError) as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise _error(exc, "encode_failed") from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return probe_result(dst)


def probe_result(path) -> RenderResult:
    """What was written: size, duration, frame rate, frame count, audio."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            fps = float(video.average_rate or video.guessed_rate or 0)
            if video.duration is not None and video.time_base:
                duration = float(video.duration * video.time_base)
            else:
                duration = (container.duration or 0) / av.time_base
            frames = video.frames or round(duration * fps)
            return RenderResult(
                path=str(path),
                width=video.codec_context.width,
                height=video.codec_context.height,
                duration=duration,
                fps=fps,
                frame_count=frames,
                size_bytes=path.stat().st_size,
                has_audio=bool(container.streams.audio),
            )
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise RenderError(MESSAGES["encode_failed"], "encode_failed") from exc


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


class _Stopped(Exception):
    """A stage saw the stop flag (another stage failed, or the render was cancelled)."""


def _make_queue() -> queue.Queue:
    return queue.Queue(maxsize=QUEUE_FRAMES)


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=POLL_SECONDS)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue


def _open_output(path) -> av.container.OutputContainer:
    # The temporary name says nothing about the format, so name the muxer.
    return av.open(str(path), "w", format="mp4", container_options={"movflags": "+faststart"})


def _error(exc: BaseException, code: str) -> RenderError:
    """A RenderError for ``exc``; running out of disk space is always ``disk_full``."""
    if isinstance(exc, RenderError):
        return exc
    if getattr(exc, "errno", None) == errno.ENOSPC:
        code = "disk_full"
    elif isinstance(exc, FileNotFoundError) and code == "source_corrupt":
        code = "source_missing"
    return RenderError(MESSAGES.get(code, MESSAGES["encode_failed"]), code)


class _Worker(threading.Thread):
    """A pipeline stage: runs ``body``; a failure is kept and stops the other stages."""

    def __init__(self, name, body, stop: threading.Event, code: str):
        super().__init__(name=name, daemon=True)
        self.body, self.stop, self.code = body, stop, code
        self.error: RenderError | None = None

    def run(self):
        try:
            self.body()
        except _Stopped:
            pass
        except BaseException as exc:
            if not isinstance(exc, (RenderError, av.FFmpegError, OSError)):
                logger.exception("%s failed", self.name)
            self.error = _error(exc, self.code)
            if self.error is not exc:
                self.error.__cause__ = exc
            self.stop.set()


def _video_stream(container):
    streams = [
        s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not streams:
        raise RenderError(MESSAGES["source_corrupt"], "source_corrupt")
    return streams[0]


def _stream_origin(stream) -> float:
    """Source time 0 of a stream, in its own clock (most files start at 0)."""
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _crop_path(clip, aspect: float) -> CropPath:
    """The clip's crop path; keyframes out of order would interpolate nonsense."""
    try:
        times = [float(k["time"]) for k in clip.crop_keyframes]
        if any(b <= a for a, b in pairwise(times)):
            raise ValueError("crop keyframe times must increase")
        return CropPath(clip.crop_keyframes, clip.width, clip.height, aspect=aspect)
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise RenderError(MESSAGES["invalid_edit"], "invalid_edit") from exc


class _Decoder:
    """Body of the decode thread: every needed clip's frames, in order, into ``out``.

    Puts ``(source_time, frame)`` for frames from the last one at or before the clip's
    first needed time up to the first one after its last needed time, then ``_END``.
    """

    def __init__(self, spec, plan, out: queue.Queue, stop: threading.Event):
        self.spec, self.plan, self.out, self.stop = spec, plan, out, stop

    def __call__(self):
        for index, clip in enumerate(self.spec.clips):
            count = self.plan.frames_of(index)
            if count == 0:
                continue
            clip_plan = self.plan.clips[index]
            first = clip_plan.first_source_time
            last = clip_plan.source_time(count - 1)
            seek = first if first > SEEK_AFTER_SECONDS else None
            if not self._decode(clip.path, first, last, seek):
                # The seek landed past the start (a bad index): decode from the top.
                self._decode(clip.path, first, last, None)
            _put(self.out, _END, self.stop)

    def _decode(self, path, first: float, last: float, seek: float | None) -> bool:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = _video_stream(container)
            stream.thread_type = "AUTO"
            origin = _stream_origin(stream)
            rate = float(stream.average_rate or stream.guessed_rate or 30)
            if seek is not None:
                container.seek(int((origin + seek) / stream.time_base), stream=stream)
            held = None  # the latest frame at or before ``first``, not sent yet
            sent = 0
            for number, frame in enumerate(container.decode(stream)):
                if self.stop.is_set():
                    raise _Stopped
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
                raise RenderError(MESSAGES["source_corrupt"], "source_corrupt")
            return True

    def _send(self, item):
        t, frame = item
        if frame.format.name != "yuv420p":
            # Full range, 4:2:2, 10 bits...: convert once, then the fast path applies.
            frame = frame.reformat(format="yuv420p")
        _put(self.out, (t, frame), self.stop)


class _AudioReader:
    """A clip's soundtrack as stereo float32 at 48 kHz, read forward by sample index.

    Sample indices count from the video's source time 0. Reads must not go backwards;
    samples before a read are dropped, so memory stays at about one audio frame.
    """

    def __init__(self, path, origin: float, start: float):
        self.container = av.open(str(path), metadata_errors="ignore")
        self.buffer = np.zeros((2, 0), np.float32)
        self.buffer_start = 0  # sample index of buffer[:, 0]
        self.frames = None
        if not self.container.streams.audio:
            return
        stream = self.container.streams.audio[0]
        self.origin = round(origin * AUDIO_RATE)
        if start > SEEK_AFTER_SECONDS:
            # Lands at or before the target; reading forward fills in the rest.
            self.container.seek(int((origin + start) / stream.time_base), stream=stream)
        self.frames = self._resampled(stream)
        self.buffer_start = None

    def _resampled(self, stream):
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        for frame in self.container.decode(stream):
            yield from resampler.resample(frame)
        yield from resampler.resample(None)

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples ``[start, start + count)``; silence where the source has none."""
        end = start + count
        while self.frames is not None and (
            self.buffer_start is None or self.buffer_start + self.buffer.shape[1] < end
        ):
            try:
                frame = next(self.frames)
            except StopIteration:
                self.frames = None
                break
            except (av.FFmpegError, OSError, ValueError):
                logger.warning("audio of %s unreadable from here on", self.container.name)
                self.frames = None
                break
            self._append(frame, start)
        out = np.zeros((2, count), np.float32)
        if self.buffer_start is None:
            return out
        lo, hi = max(start, self.buffer_start), min(end, self.buffer_start + self.buffer.shape[1])
        if hi > lo:
            out[:, lo - start : hi - start] = self.buffer[
                :, lo - self.buffer_start : hi - self.buffer_start
            ]
        self._forget_before(start)
        return out

    def _append(self, frame, floor: int):
        data = frame.to_ndarray().astype(np.float32, copy=False).reshape(2, -1)
        end = None if self.buffer_start is None else self.buffer_start + self.buffer.shape[1]
        if frame.pts is not None and frame.time_base:
            position = round(frame.pts * frame.time_base * AUDIO_RATE) - self.origin
        else:
            position = end if end is not None else 0
        if end is None or position - end > MAX_AUDIO_GAP:
            # The first samples, or a jump too long to fill: start afresh there.
            self.buffer, self.buffer_start = data, position
        else:
            if position > end:  # a gap in the source: silence
                data = np.concatenate([np.zeros((2, position - end), np.float32), data], axis=1)
            elif position < end:  # an overlap: keep what we have
                data = data[:, end - position :]
            self.buffer = np.concatenate([self.buffer, data], axis=1)
        # Reads only go forward, so what lies before this one is never needed again.
        self._forget_before(floor)

    def _forget_before(self, sample: int):
        drop = min(max(0, sample - self.buffer_start), self.buffer.shape[1])
        if drop:
            self.buffer = self.buffer[:, drop:]
            self.buffer_start += drop

    def close(self):
        self.container.close()


class _Encoder:
    """Body of the encode thread: ``(frame, audio)`` items in, muxed packets out."""

    def __init__(self, container, video, audio, source: queue.Queue, stop: threading.Event):
        self.container, self.video, self.audio = container, video, audio
        self.source, self.stop = source, stop
        self.frames = 0
        self.samples = 0

    def __call__(self):
        mux = self.container.mux
        while True:
            item = _get(self.source, self.stop)
            if item is _END:
                break
            frame, sound = item
            frame.pts = self.frames
            frame.pict_type = av.video.frame.PictureType.NONE
            mux(self.video.encode(frame))
            self.frames += 1
            if self.audio is not None and sound is not None and sound.shape[1]:
                chunk = av.AudioFrame.from_ndarray(sound, format="fltp", layout="stereo")
                chunk.sample_rate = AUDIO_RATE
                chunk.pts = self.samples
                chunk.time_base = Fraction(1, AUDIO_RATE)
                self.samples += sound.shape[1]
                mux(self.audio.encode(chunk))
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
        self.with_audio = any(clip.has_audio for clip in spec.clips)
        self.stop = threading.Event()
        self.decoded = _make_queue()
        self.encoded = _make_queue()
        self.done = 0
        self.batch = []  # (cropped rgb, audio) waiting for the upscaler
        self.audio = None  # the current clip's _AudioReader
        # One scaler for the whole render: it keeps its swscale context (Lanczos filter
        # tables) while the crop size stays the same; a fresh one per frame costs 4x.
        self.scaler = VideoReformatter()

    def run(self):
        total = self.plan.total_frames
        self.progress(0, total, "rendering")
        if self.should_cancel():
            raise RenderCancelled()
        try:
            container = _open_output(self.tmp_name)
        except (av.FFmpegError, OSError) as exc:
            raise _error(exc, "encode_failed") from exc
        workers, finished = [], False
        try:
            video, audio = self._add_streams(container)
            self.decoder = _Decoder(self.spec, self.plan, self.decoded, self.stop)
            self.encoder = _Encoder(container, video, audio, self.encoded, self.stop)
            workers = [
                _Worker("framing-decode", self.decoder, self.stop, "source_corrupt"),
                _Worker("framing-encode", self.encoder, self.stop, "encode_failed"),
            ]
            for worker in workers:
                worker.start()
            try:
                self._render_all()
                _put(self.encoded, _END, self.stop)
                self.progress(total, total, "finishing")
                workers[1].join()
            except _Stopped:
                pass
            self._raise_worker_error(workers)
            if self.stop.is_set():  # stopped, yet nobody said why: never a silent success
                raise RenderError(MESSAGES["encode_failed"], "encode_failed")
            finished = True
        finally:
            self.stop.set()
            for worker in workers:
                worker.join(JOIN_SECONDS)
                if worker.is_alive():
                    logger.error("%s did not stop within %ss", worker.name, JOIN_SECONDS)
            if self.audio is not None:
                self.audio.close()
            self._close(container, finished)

    def _close(self, container, finished):
        if not finished:
            # The file is about to be deleted; just release it (and x264's threads).
            with contextlib.suppress(Exception):
                container.close()
            return
        try:
            container.close()  # writes the index, then moves it to the front (faststart)
        except (av.FFmpegError, OSError) as exc:
            raise _error(exc, "encode_failed") from exc

    def _raise_worker_error(self, workers):
        for worker in workers:
            if worker.error is not None:
                raise worker.error

    def _add_streams(self, container):
        rate = self.plan.fps
        video = container.add_stream(
            "libx264", rate=rate, options={"crf": str(self.spec.crf), "preset": self.spec.preset}
        )
        video.width, video.height = self.width, self.height
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = 1 / rate
        # x264 frame threads: PyAV's default (slice threads) is markedly slower.
        video.codec_context.thread_type = "FRAME"
        audio = None
        if self.with_audio:
            audio = container.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "stereo"
            audio.format = "fltp"
            audio.bit_rate = AUDIO_BIT_RATE
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
        if not (self.with_audio and clip.has_audio):
            return
        try:
            with av.open(str(clip.path), metadata_errors="ignore") as probe:
                origin = _stream_origin(_video_stream(probe))
            self.audio = _AudioReader(clip.path, origin, clip_plan.first_source_time)
        except (av.FFmpegError, OSError, ValueError):
            logger.warning("audio of %s could not be opened; silence instead", clip.path)
            self.audio = None

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
                    item = _get(self.decoded, self.stop)
                    if item is _END:
                        exhausted = True
                        break
                    pending = item
                if current is None or pending[0] <= s + timeline.EPSILON:
                    current, pending = pending, None
                else:
                    break
            if current is None:
                raise RenderError(MESSAGES["source_corrupt"], "source_corrupt")
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
            if _get(self.decoded, self.stop) is _END:
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
        _put(self.encoded, (frame, sound), self.stop)
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
            raise RenderError(MESSAGES["upscale_failed"], "upscale_failed") from exc
        if len(upscaled) != len(batch):
            raise RenderError(MESSAGES["upscale_failed"], "upscale_failed")
        for image, (_, sound) in zip(upscaled, batch, strict=True):
            image = np.ascontiguousarray(image, dtype=np.uint8)
            if image.shape[:2] != (self.height, self.width):
                image = cv2.resize(
                    image, (self.width, self.height), interpolation=cv2.INTER_LANCZOS4
                )
            out = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            self._emit(out, sound)
