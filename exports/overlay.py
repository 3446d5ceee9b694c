"""Overlay render: highlight ellipses drawn onto the working video, giving the final video.

``render_overlay`` decodes the working video, draws every highlight region that is
active at each frame's time, and encodes the result (H.264 yuv420p MP4, faststart) with
the working video's audio packets copied through untouched. Without regions nothing is
re-encoded: the streams are remuxed.

Frames are edited in place in yuv420p, never converted to BGR: on this machine the
encoder is the bottleneck, so the drawing has to cost next to nothing. Per frame:

- ``dim_outside`` (spotlight): one affine map per plane dims the whole frame
  (cv2.convertScaleAbs: half a millisecond for the Y plane at 1080x1920), then inside
  each spotlight's bounding box the original pixels are blended back through a
  feathered ellipse mask.
  Several spotlights therefore light up their union instead of dimming each other.
- ``brighten_inside``: the bounding box is brightened by an affine map and blended in
  through the same kind of mask.
- the outline is drawn last with ``cv2.ellipse`` (anti-aliased, sub-pixel centre) on the
  Y plane and, at half scale, on the U and V planes.

Both effects are affine maps of RGB (``c * 0.35`` and ``c + (255 - c) * 0.35``), which in
YUV are the same maps of Y (around black or white) and of U, V (around grey): no
colour conversion is needed. Decoding, drawing and encoding run on three threads with
small queues between them (PyAV and OpenCV release the GIL while they work).
"""

import math
import os
import queue
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.frame import PictureType

from .interpolation import ELLIPSE_KEYS, KeyframePath
from .pipeline import probe_result
from .render import CancelCheck, ProgressCallback, RenderCancelled, RenderError, RenderResult

DIM_OUTSIDE = "dim_outside"
BRIGHTEN_INSIDE = "brighten_inside"
EFFECTS = (DIM_OUTSIDE, BRIGHTEN_INSIDE)

DIM_FACTOR = 0.35  # outside a spotlight, RGB is multiplied by this
BRIGHTEN_AMOUNT = 0.35  # inside a brightened ellipse, RGB moves this far towards white
CANCEL_EVERY = 4  # frames between two should_cancel() checks
QUEUE_FRAMES = 4  # frames buffered between the decode, draw and encode threads

# Masks hold weights 0..128 (not 255) so blending fits int16 and divides by a shift.
_WEIGHT_BITS = 7
_WEIGHT_ONE = 1 << _WEIGHT_BITS
_SHIFT = 4  # cv2 drawing with 4 fractional bits: ellipses move by 1/16 px, never jump
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class RegionSpec:
    """A plain copy of a ``projects.HighlightRegion`` row (times in s, working-video px)."""

    start: float
    end: float
    effect: str
    color: str
    stroke_width: int
    keyframes: list


def render_overlay(
    working_video_path,
    regions: list[RegionSpec],
    output_path,
    *,
    preset: str = "veryfast",
    crf: int = 20,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> RenderResult:
    """Render ``regions`` onto the working video into ``output_path``.

    Same size, frame rate and frame count as the working video; its audio is copied.
    The output appears at ``output_path`` only when complete (written under a temporary
    name and renamed); on error or cancellation nothing is left behind.
    Raises RenderError (codes ``source_missing``, ``source_corrupt``, ``invalid_region``,
    ``render_failed``) or RenderCancelled.
    """
    painters = [_RegionPainter(spec) for spec in regions]
    output_path = Path(output_path)
    source = _open_source(working_video_path)
    tmp = _temp_name(output_path)
    try:
        try:
            if painters:
                _render(source, painters, tmp, preset, crf, progress, should_cancel)
            else:
                _remux(source, tmp, progress, should_cancel)
        finally:
            source.close()
        os.replace(tmp, output_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return probe_result(output_path)


# --- source and output files ----------------------------------------------------------


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


def _temp_name(output_path: Path) -> str:
    # Same directory as the output, so os.replace is an atomic rename.
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent
    )
    os.close(fd)
    return name


def _open_output(path):
    # The temporary name says nothing about the format, so name the muxer.
    return av.open(path, "w", format="mp4", container_options={"movflags": "+faststart"})


def _frame_total(video) -> int:
    if video.frames:
        return video.frames
    rate = video.average_rate or video.guessed_rate
    if video.duration is not None and rate:
        return max(1, round(float(video.duration * video.time_base * rate)))
    return 0


def _copy_streams(source, output):
    """Output streams for the source's video and audio, as {source index: output stream}."""
    return {
        stream.index: output.add_stream_from_template(stream)
        for stream in (*source.streams.video[:1], *source.streams.audio)
    }


def _remux(source, output_path, progress, should_cancel):
    """Copy the source's video and audio packets into ``output_path`` (MP4, faststart)."""
    total = _frame_total(source.streams.video[0])
    done = 0
    with _open_output(output_path) as output:
        streams = _copy_streams(source, output)
        try:
            packets = source.demux(*(source.streams[i] for i in streams))
            for packet in packets:
                if packet.dts is None:  # the demuxer's empty end-of-stream packets
                    continue
                is_video = packet.stream.type == "video"
                packet.stream = streams[packet.stream.index]
                output.mux(packet)
                if is_video:
                    done += 1
                    if done % CANCEL_EVERY == 0 and should_cancel and should_cancel():
                        raise RenderCancelled()
                    if progress:
                        progress(done, max(total, done), "remux")
        except av.FFmpegError as exc:
            raise RenderError("The working video cannot be read.", "source_corrupt") from exc
        _check_complete(done, total)


def _check_complete(done, total):
    # FFmpeg reads a truncated MP4 (index intact, data cut short) without an error:
    # the frame count in the index is what says frames are missing.
    if done < total:
        raise RenderError(
            f"The working video is cut short ({done} of {total} frames).", "source_corrupt"
        )


# --- the render pipeline ------------------------------------------------------------


def _render(source, painters, output_path, preset, crf, progress, should_cancel):
    video = source.streams.video[0]
    video.thread_type = "AUTO"
    audio = list(source.streams.audio)
    total = _frame_total(video)
    rate = video.average_rate or video.guessed_rate or Fraction(30)
    width, height = video.codec_context.width, video.codec_context.height

    with _open_output(output_path) as output:
        out_video = output.add_stream(
            "libx264",
            rate=rate,
            # A keyframe every two seconds keeps seeking in the gallery player cheap.
            options={"crf": str(crf), "preset": preset, "g": str(max(1, round(2 * rate)))},
        )
        out_video.width, out_video.height = width, height
        out_video.pix_fmt = "yuv420p"
        codec = out_video.codec_context
        codec.time_base = video.time_base  # frames keep their own timestamps
        # PyAV defaults to slice threads; frame threads are much faster for x264.
        codec.thread_type = "FRAME"
        for tag in ("colorspace", "color_range", "color_primaries", "color_trc"):
            setattr(codec, tag, getattr(video.codec_context, tag))
        out_audio = {stream.index: output.add_stream_from_template(stream) for stream in audio}

        frames = _Background(_decode(source, video, audio), QUEUE_FRAMES)
        muxer = _Muxer(output, out_video, out_audio)
        canvas = None
        done = 0
        try:
            for item in frames:
                if isinstance(item, av.Packet):
                    muxer.put(item)
                    continue
                frame = item
                if frame.pts is None:  # never from MP4; number such frames by the rate
                    frame.pts = round(done / rate / video.time_base)
                    frame.time_base = video.time_base
                t = frame.time
                active = [p for p in painters if p.start <= t < p.end]
                if frame.format.name != "yuv420p":
                    frame = frame.reformat(format="yuv420p")
                if active:
                    if canvas is None:
                        canvas = _Canvas(frame)
                    # A decoded frame may share its buffers with the decoder's reference
                    # frames: make it own them before drawing.
                    frame.make_writable()
                    canvas.paint(frame, active, t)
                # Otherwise x264 copies the source's frame types (keyframes and all).
                frame.pict_type = PictureType.NONE
                muxer.put(frame)
                done += 1
                if done % CANCEL_EVERY == 0 and should_cancel and should_cancel():
                    raise RenderCancelled()
                if progress:
                    progress(done, max(total, done), "overlay")
            _check_complete(done, total)
            muxer.finish()
        except av.FFmpegError as exc:
            raise RenderError("The working video cannot be read.", "source_corrupt") from exc
        finally:
            frames.close()
            muxer.abort()


def _decode(source, video, audio):
    """Video frames and audio packets of the source, in demux order."""
    audio_indexes = {stream.index for stream in audio}
    for packet in source.demux(video, *audio):
        if packet.stream.index in audio_indexes:
            if packet.dts is not None:
                yield packet
            continue
        yield from packet.decode()


class _Failure:
    def __init__(self, exc):
        self.exc = exc


_END = object()


class _Background:
    """Runs an iterator on its own thread, at most ``size`` items ahead of the consumer."""

    def __init__(self, iterator, size):
        self._queue = queue.Queue(size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterator,), daemon=True)
        self._thread.start()

    def _run(self, iterator):
        try:
            for item in iterator:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:
            self._put(_Failure(exc))
        finally:
            iterator.close()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self):
        self._stop.set()
        self._thread.join()


class _Muxer:
    """Encodes frames and muxes them, with copied audio packets, on its own thread."""

    _ABORT = object()

    def __init__(self, output, video, audio: dict):
        self._output, self._video, self._audio = output, video, audio
        self._queue = queue.Queue(QUEUE_FRAMES)
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while True:
                item = self._queue.get()
                if item is self._ABORT:
                    return
                if item is _END:
                    self._output.mux(self._video.encode(None))
                    return
                if isinstance(item, av.Packet):
                    item.stream = self._audio[item.stream.index]
                    self._output.mux(item)
                else:
                    self._output.mux(self._video.encode(item))
        except BaseException as exc:
            self._error = exc

    def put(self, item):
        while True:
            if not self._thread.is_alive():
                self._raise()
                raise RenderError("The encoder stopped unexpectedly.")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self):
        """Flush the encoder; raises what went wrong on the encoding thread."""
        self.put(_END)
        self._thread.join()
        self._raise()

    def abort(self):
        if self._thread.is_alive():
            self._stop_thread()

    def _stop_thread(self):
        while self._thread.is_alive():
            try:
                self._queue.put(self._ABORT, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()

    def _raise(self):
        if self._error is None:
            return
        if isinstance(self._error, av.FFmpegError | OSError):
            raise RenderError("Encoding the final video failed.") from self._error
        raise self._error


# --- drawing ------------------------------------------------------------------------


def _parse_color(color: str) -> tuple[int, int, int]:
    if not (isinstance(color, str) and len(color) == 7 and color.startswith("#")):
        raise RenderError(f"Bad highlight colour {color!r}.", "invalid_region")
    try:
        return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    except ValueError:
        raise RenderError(f"Bad highlight colour {color!r}.", "invalid_region") from None


class _RegionPainter:
    """One region, prepared once: its keyframe path, colour and effect."""

    def __init__(self, spec: RegionSpec):
        if spec.effect not in EFFECTS:
            raise RenderError(f"Unknown highlight effect {spec.effect!r}.", "invalid_region")
        try:
            self.path = KeyframePath(spec.keyframes, ELLIPSE_KEYS)
        except (ValueError, KeyError, TypeError) as exc:
            raise RenderError("A highlight region has bad keyframes.", "invalid_region") from exc
        self.start, self.end = float(spec.start), float(spec.end)
        self.effect = spec.effect
        self.rgb = _parse_color(spec.color)
        self.stroke_width = max(0, int(spec.stroke_width))


def _rgb_to_yuv(rgb, bt709: bool, full_range: bool) -> tuple[int, int, int]:
    kr, kb = (0.2126, 0.0722) if bt709 else (0.299, 0.114)
    r, g, b = (c / 255 for c in rgb)
    y = kr * r + (1 - kr - kb) * g + kb * b
    pb, pr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    luma, chroma = (255, 255) if full_range else (219, 224)
    black = 0 if full_range else 16
    return tuple(
        int(np.clip(round(v), 0, 255))
        for v in (black + luma * y, 128 + chroma * pb, 128 + chroma * pr)
    )


def _towards(anchor: float, factor: float) -> tuple[float, float]:
    """``(alpha, beta)`` of ``v -> anchor + (v - anchor) * factor`` for cv2.convertScaleAbs.

    The result is never negative here, so the "Abs" is a no-op; OpenCV rounds and
    saturates, in SIMD, about twice as fast as a lookup table.
    """
    return factor, anchor * (1 - factor)


def _apply(src, alpha_beta, dst=None):
    alpha, beta = alpha_beta
    return cv2.convertScaleAbs(src, dst=dst, alpha=alpha, beta=beta)


def _planes(frame):
    """(full buffer, visible view) of each plane; the buffer includes line padding."""
    planes = []
    for plane in frame.planes:
        buffer = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        planes.append((buffer, buffer[:, : plane.width]))
    return planes


def _blend(dst, src, weights):
    """``dst += (src - dst) * weights / 128`` in place (uint8 planes, int16 weights)."""
    base = dst.astype(np.int16)
    diff = src.astype(np.int16)
    diff -= base
    diff *= weights
    diff += _WEIGHT_ONE // 2
    diff >>= _WEIGHT_BITS
    base += diff
    dst[...] = base


class _Ellipse:
    """Where a region's ellipse is in one frame: its bounding box and soft masks."""

    def __init__(self, painter, t, width, height, pad):
        shape = painter.path.at(t)
        self.painter = painter
        self.cx, self.cy, self.rx, self.ry = shape["x"], shape["y"], shape["rx"], shape["ry"]
        # Bounding box with room for the feather, on even pixels so the chroma box is
        # exactly half of it.
        self.x0 = max(0, 2 * math.floor((self.cx - self.rx - pad) / 2))
        self.y0 = max(0, 2 * math.floor((self.cy - self.ry - pad) / 2))
        self.x1 = min(width, 2 * math.ceil((self.cx + self.rx + pad) / 2))
        self.y1 = min(height, 2 * math.ceil((self.cy + self.ry + pad) / 2))
        self.empty = self.x1 <= self.x0 or self.y1 <= self.y0
        luma = np.s_[self.y0 : self.y1, self.x0 : self.x1]
        chroma = np.s_[self.y0 // 2 : (self.y1 + 1) // 2, self.x0 // 2 : (self.x1 + 1) // 2]
        self.boxes = (luma, chroma, chroma)  # per plane: Y, U, V

    def masks(self, feather):
        """Per plane, int16 weights 0..128 over its box: 128 inside, a ramp at the edge."""
        mask = np.zeros((self.y1 - self.y0, self.x1 - self.x0), np.uint8)
        cv2.ellipse(
            mask,
            (round((self.cx - self.x0) * _ONE), round((self.cy - self.y0) * _ONE)),
            (round(self.rx * _ONE), round(self.ry * _ONE)),
            0,
            0,
            360,
            _WEIGHT_ONE,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )
        if feather > 0:
            # A box blur turns the edge into a linear ramp ``2 * feather + 1`` px wide.
            mask = cv2.blur(mask, (2 * feather + 1, 2 * feather + 1))
        chroma_size = ((self.x1 + 1) // 2 - self.x0 // 2, (self.y1 + 1) // 2 - self.y0 // 2)
        chroma = cv2.resize(mask, chroma_size, interpolation=cv2.INTER_AREA).astype(np.int16)
        return mask.astype(np.int16), chroma, chroma


class _Canvas:
    """Draws regions onto yuv420p frames of one size and colour matrix."""

    def __init__(self, frame):
        self.width, self.height = frame.width, frame.height
        bt709 = int(frame.colorspace) == 1
        self.full_range = int(frame.color_range) == 2
        self.bt709 = bt709
        black, white = (0, 255) if self.full_range else (16, 235)
        dim = _towards(black, DIM_FACTOR), _towards(128, DIM_FACTOR)
        bright = _towards(white, 1 - BRIGHTEN_AMOUNT), _towards(128, 1 - BRIGHTEN_AMOUNT)
        # Per plane (Y, U, V): luma moves towards black or white, chroma towards grey.
        self.maps = {DIM_OUTSIDE: (dim[0], dim[1], dim[1]), BRIGHTEN_INSIDE: (*bright, bright[1])}
        # "A few pixels" of soft edge, in proportion to the frame: 4 px at 1080 wide.
        self.feather = max(2, round(min(self.width, self.height) / 270))
        self.colors = {}

    def _yuv(self, rgb):
        if rgb not in self.colors:
            self.colors[rgb] = _rgb_to_yuv(rgb, self.bt709, self.full_range)
        return self.colors[rgb]

    def paint(self, frame, painters, t):
        planes = _planes(frame)
        pad = self.feather + 2
        ellipses = [_Ellipse(p, t, self.width, self.height, pad) for p in painters]
        spots = [e for e in ellipses if e.painter.effect == DIM_OUTSIDE]
        if spots:
            self._spotlight(planes, spots)
        for ellipse in ellipses:
            if ellipse.painter.effect == BRIGHTEN_INSIDE and not ellipse.empty:
                self._brighten(planes, ellipse)
        for ellipse in ellipses:
            if ellipse.painter.stroke_width:
                self._outline(planes, ellipse)

    def _spotlight(self, planes, spots):
        # Keep the original pixels of every spotlight box, dim the whole frame with one
        # affine map per plane, then blend the originals back in through the masks.
        spots = [e for e in spots if not e.empty]
        kept = [
            [view[box].copy() for (_, view), box in zip(planes, e.boxes, strict=True)]
            for e in spots
        ]
        for (buffer, _), dim in zip(planes, self.maps[DIM_OUTSIDE], strict=True):
            _apply(buffer, dim, dst=buffer)
        for ellipse, originals in zip(spots, kept, strict=True):
            masks = ellipse.masks(self.feather)
            for (_, view), box, original, mask in zip(
                planes, ellipse.boxes, originals, masks, strict=True
            ):
                _blend(view[box], original, mask)

    def _brighten(self, planes, ellipse):
        masks = ellipse.masks(self.feather)
        maps = self.maps[BRIGHTEN_INSIDE]
        for (_, view), box, mask, bright in zip(planes, ellipse.boxes, masks, maps, strict=True):
            region = view[box]
            _blend(region, _apply(region, bright), mask)

    def _outline(self, planes, ellipse):
        stroke = ellipse.painter.stroke_width
        yuv = self._yuv(ellipse.painter.rgb)
        for i, (_, view) in enumerate(planes):
            if i == 0:
                cx, cy, rx, ry, thickness = ellipse.cx, ellipse.cy, ellipse.rx, ellipse.ry, stroke
            else:
                # Chroma sample (j, i) sits at luma (2j + 0.5, 2i + 0.5).
                cx, cy = (ellipse.cx - 0.5) / 2, (ellipse.cy - 0.5) / 2
                rx, ry = ellipse.rx / 2, ellipse.ry / 2
                thickness = max(1, round(stroke / 2))
            cv2.ellipse(
                view,
                (round(cx * _ONE), round(cy * _ONE)),
                (round(rx * _ONE), round(ry * _ONE)),
                0,
                0,
                360,
                (yuv[i],),
                thickness,
                cv2.LINE_AA,
                _SHIFT,
            )
