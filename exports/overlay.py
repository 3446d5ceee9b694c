"""Overlay render: highlight ellipses drawn onto the working video, giving the final video.

``render_overlay`` decodes the working video, draws every highlight region that is
active at each frame's time (:mod:`exports.highlights`, in place in yuv420p), and
encodes the result (H.264 yuv420p MP4, faststart) with the working video's audio
packets copied through untouched. Without regions nothing is re-encoded: the streams
are remuxed. The final video's presets (projects/presets.py) may ask for a smaller size
(each frame is scaled after drawing) and a title card (:mod:`exports.titlecard`): its
frames come first and every video frame and audio packet after it moves later by the
card's length, so the sound stays with its picture and the card itself is silent.

Three threads, two small queues (:mod:`exports.stages`), so decoding, drawing and x264
overlap and memory does not grow with the video::

    decode thread --[4 items]--> calling thread --[4 items]--> encode thread
    demux, decode video;         draw the active regions,     x264 (frame threads),
    audio packets pass           progress, cancel checks      mux copied audio
"""

import contextlib
import queue
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from . import media_io, stages, titlecard
from .errors import RenderCancelled, RenderError
from .highlights import Canvas, RegionPainter
from .render import CancelCheck, ProgressCallback, RegionSpec, RenderResult

CANCEL_EVERY = 4  # frames between two should_cancel() checks
QUEUE_FRAMES = 4  # frames buffered between the decode, draw and encode threads

# The decoded frame's colour description, carried over so players show the same colours.
COLOR_TAGS = ("colorspace", "color_range", "color_primaries", "color_trc")


def render_overlay(
    working_video_path,
    regions: list[RegionSpec],
    output_path,
    *,
    preset: str = "veryfast",
    crf: int = 20,
    size: tuple[int, int] | None = None,
    title_card: dict | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> RenderResult:
    """Render ``regions`` onto the working video into ``output_path``.

    Same frame rate and frame count as the working video (plus the title card's frames),
    at ``size`` (default: the working video's); its audio is copied.
    The output appears at ``output_path`` only when complete (written under a temporary
    name and renamed); on error or cancellation nothing is left behind.
    Raises RenderError (codes ``source_missing``, ``source_corrupt``, ``invalid_region``,
    ``render_failed``) or RenderCancelled.
    """
    painters = [RegionPainter(spec) for spec in regions]
    output_path = Path(output_path)
    tick = _ticker(progress, should_cancel)
    with contextlib.closing(_open_source(working_video_path)) as source:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        with media_io.replaced_when_done(output_path) as tmp_name:
            render = _Render(source, painters, tmp_name, preset, crf, tick, size, title_card)
            if painters or title_card or render.scaled:
                render.run()
            else:
                _remux(source, tmp_name, tick)
    return media_io.probe_result(output_path)


def _ticker(progress, should_cancel):
    """``tick(done, total, phase)`` after each frame: cancel checks, then progress."""

    def tick(done: int, total: int, phase: str) -> None:
        if done % CANCEL_EVERY == 0 and should_cancel and should_cancel():
            raise RenderCancelled()
        if progress:
            progress(done, max(total, done), phase)

    return tick


# --- the working video --------------------------------------------------------------


def _open_source(path):
    path = Path(path)
    if not path.is_file():
        raise RenderError("The working video is missing.", "source_missing")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise RenderError("The working video cannot be read.", "source_corrupt") from exc
    if not container.streams.video:
        container.close()
        raise RenderError("The working video has no video stream.", "source_corrupt")
    return container


def _unreadable() -> RenderError:
    return RenderError("The working video cannot be read.", "source_corrupt")


def _check_complete(done, total):
    # FFmpeg reads a truncated MP4 (index intact, data cut short) without an error:
    # the frame count in the index is what says frames are missing.
    if done < total:
        raise RenderError(
            f"The working video is cut short ({done} of {total} frames).", "source_corrupt"
        )


def _remux(source, tmp_name, tick):
    """Copy the source's video and audio packets into ``tmp_name`` (MP4, faststart)."""
    total = media_io.frame_total(source.streams.video[0])
    with media_io.open_output(tmp_name) as output:
        streams = media_io.streams_like(output, (*source.streams.video[:1], *source.streams.audio))
        try:
            done = media_io.copy_packets(source, output, streams, lambda n: tick(n, total, "remux"))
        except av.FFmpegError as exc:
            raise _unreadable() from exc
        _check_complete(done, total)


# --- the render ---------------------------------------------------------------------


def _decode_error(exc: BaseException) -> BaseException:
    return _unreadable() if isinstance(exc, av.FFmpegError) else exc


def _encode_error(exc: BaseException) -> BaseException:
    if isinstance(exc, av.FFmpegError | OSError):
        return RenderError("Encoding the final video failed.")
    return exc


class _Render:
    """One render of regions onto the working video (the calling thread's side)."""

    def __init__(self, source, painters, tmp_name, preset, crf, tick, size=None, card=None):
        self.source, self.painters, self.tmp_name = source, painters, tmp_name
        self.preset, self.crf, self.tick = preset, crf, tick
        self.video = source.streams.video[0]
        self.video.thread_type = "AUTO"
        self.audio = list(source.streams.audio)
        self.total = media_io.frame_total(self.video)
        self.rate = self.video.average_rate or self.video.guessed_rate or Fraction(30)
        codec = self.video.codec_context
        self.size = tuple(size) if size else (codec.width, codec.height)
        self.scaled = self.size != (codec.width, codec.height)
        self.card = card
        self.card_image = None  # drawn once, for the card's first frame
        # The card lasts a whole number of frames; everything after it starts that late.
        self.card_frames = round(titlecard.SECONDS * self.rate) if card else 0
        self.delay = Fraction(self.card_frames) / self.rate  # seconds
        self.line = stages.Stages()
        self.decoded = queue.Queue(QUEUE_FRAMES)
        self.encoded = queue.Queue(QUEUE_FRAMES)
        self.canvas = None  # made for the first frame that has something to draw

    def run(self):
        # The stages stop (and are joined) before the output is closed.
        with media_io.open_output(self.tmp_name) as output, self.line:
            video_out, audio_out = self._add_streams(output)
            self.line.start("overlay-decode", self._decode, _decode_error)
            self.encoding = self.line.start(
                "overlay-encode", lambda: self._encode(output, video_out, audio_out),
                _encode_error,
            )  # fmt: skip
            try:
                self.line.run(
                    self._draw_all, silent_stop=RenderError("The encoder stopped unexpectedly.")
                )
            except av.FFmpegError as exc:  # converting or drawing a frame
                raise _unreadable() from exc

    def _add_streams(self, output):
        video = self.video
        codec = video.codec_context
        video_out = media_io.add_h264(
            output, rate=self.rate, width=self.size[0], height=self.size[1],
            crf=self.crf, preset=self.preset,
            time_base=video.time_base,  # frames keep their own timestamps
            # A keyframe every two seconds keeps seeking in the gallery player cheap.
            options={"g": str(max(1, round(2 * self.rate)))},
        )  # fmt: skip
        for tag in COLOR_TAGS:
            setattr(video_out.codec_context, tag, getattr(codec, tag))
        return video_out, media_io.streams_like(output, self.audio)

    def _decode(self):
        """Decode thread: video frames and audio packets of the source, in demux order."""
        audio_indexes = {stream.index for stream in self.audio}
        with contextlib.closing(self.source.demux(self.video, *self.audio)) as packets:
            for packet in packets:
                if packet.stream.index in audio_indexes:
                    if packet.dts is not None:
                        self.line.put(self.decoded, packet)
                    continue
                for frame in packet.decode():
                    self.line.put(self.decoded, frame)
        self.line.put(self.decoded, stages.END)

    def _draw_all(self):
        total = self.total + self.card_frames
        for index in range(self.card_frames):
            self.line.put(self.encoded, self._card_frame(index))
            self.tick(index + 1, total, "overlay")
        done = 0
        for item in self.line.items(self.decoded):
            if isinstance(item, av.Packet):
                self.line.put(self.encoded, self._delayed_packet(item))
                continue
            self.line.put(self.encoded, self._draw(item, done))
            done += 1
            self.tick(self.card_frames + done, total, "overlay")
        _check_complete(done, self.total)
        self.line.put(self.encoded, stages.END)
        self.encoding.join()  # until x264 is flushed

    def _draw(self, frame, done):
        if frame.pts is None:  # never from MP4; number such frames by the rate
            frame.pts = round(done / self.rate / self.video.time_base)
            frame.time_base = self.video.time_base
        t = frame.time
        active = [p for p in self.painters if p.start <= t < p.end]
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if active:
            if self.canvas is None:
                self.canvas = Canvas(frame)
            # A decoded frame may share its buffers with the decoder's reference
            # frames: make it own them before drawing.
            frame.make_writable()
            self.canvas.paint(frame, active, t)
        if self.scaled:
            frame = self._scaled(frame)
        if self.delay:
            frame.pts += round(self.delay / self.video.time_base)
        # Otherwise x264 copies the source's frame types (keyframes and all).
        frame.pict_type = PictureType.NONE
        return frame

    def _scaled(self, frame):
        width, height = self.size
        scaled = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
        scaled.pts, scaled.time_base = frame.pts, frame.time_base
        return scaled

    def _card_frame(self, index):
        if self.card_image is None:
            self.card_image = titlecard.video_frame(self.card, *self.size)
        # One picture, shown card_frames times: a new frame object per pts for x264.
        frame = av.VideoFrame.from_ndarray(self.card_image.to_ndarray(), format="yuv420p")
        for tag in COLOR_TAGS:
            setattr(frame, tag, getattr(self.card_image, tag))
        frame.pts = round(Fraction(index) / self.rate / self.video.time_base)
        frame.time_base = self.video.time_base
        return frame

    def _delayed_packet(self, packet):
        if self.delay:
            shift = round(self.delay / packet.time_base)
            packet.pts += shift
            packet.dts += shift
        return packet

    def _encode(self, output, video_out, audio_out):
        """Encode thread: frames to x264, copied audio packets to their streams."""
        mux = output.mux
        for item in self.line.items(self.encoded):
            if isinstance(item, av.Packet):
                item.stream = audio_out[item.stream.index]
                mux(item)
            else:
                mux(video_out.encode(item))
        mux(video_out.encode(None))
