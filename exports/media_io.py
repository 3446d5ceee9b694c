"""Media files in and out, for both renders: probing, output files, remux and audio.

What the framing and overlay renders do alike with containers lives here, once:

- outputs are H.264 yuv420p MP4s with the index at the front (faststart, so a browser
  plays them before they are fully downloaded), written under a temporary name next to
  the final one and renamed when complete (:func:`replaced_when_done`): a reader never
  sees half a video, and a failed render leaves nothing behind;
- encoders use x264's frame threads (PyAV's default, slice threads, is markedly slower);
- packets are copied as they are where nothing needs re-encoding (:func:`remux`, the
  overlay render's audio and its no-regions case);
- a clip's soundtrack is read as 48 kHz stereo float samples by sample index
  (:class:`AudioReader`) and encoded as AAC.
"""

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .errors import failure, render_error
from .render import RenderResult
from .timeline import AUDIO_RATE

logger = logging.getLogger(__name__)

AUDIO_BIT_RATE = 160_000
# A jump in a source's audio timestamps longer than this is not filled with silence.
MAX_AUDIO_GAP = 60 * AUDIO_RATE
# Seeking to a start time is worth it past this many seconds of source.
SEEK_AFTER_SECONDS = 2.0


# --- inputs ---------------------------------------------------------------------------


def video_stream(container):
    """The container's video: its first stream that is not a cover picture."""
    streams = [
        s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not streams:
        raise failure("source_corrupt")
    return streams[0]


def stream_origin(stream) -> float:
    """Source time 0 of a stream, in its own clock (most files start at 0)."""
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    return 0.0


def frame_total(video) -> int:
    """How many frames the index says ``video`` has (0 if it does not say)."""
    if video.frames:
        return video.frames
    rate = video.average_rate or video.guessed_rate
    if video.duration is not None and rate:
        return max(1, round(float(video.duration * video.time_base * rate)))
    return 0


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
        raise failure("encode_failed") from exc


# --- outputs --------------------------------------------------------------------------


@contextlib.contextmanager
def replaced_when_done(output_path) -> Iterator[str]:
    """A temporary name next to ``output_path``, renamed to it when the block completes.

    Same directory, so the rename is atomic; if the block raises (cancelled included),
    the temporary file is removed and ``output_path`` is left as it was.
    """
    output_path = Path(output_path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent
    )
    os.close(fd)
    try:
        yield tmp_name
        os.replace(tmp_name, output_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def open_output(path) -> av.container.OutputContainer:
    # The temporary name says nothing about the format, so name the muxer.
    return av.open(str(path), "w", format="mp4", container_options={"movflags": "+faststart"})


def add_h264(output, *, rate, width: int, height: int, crf: int, preset: str, time_base,
             options: dict | None = None):  # fmt: skip
    """A libx264 yuv420p stream on ``output``; frames are stamped in ``time_base``."""
    video = output.add_stream(
        "libx264", rate=rate, options={"crf": str(crf), "preset": preset, **(options or {})}
    )
    video.width, video.height = width, height
    video.pix_fmt = "yuv420p"
    video.codec_context.time_base = time_base
    # x264 frame threads: PyAV's default (slice threads) is markedly slower.
    video.codec_context.thread_type = "FRAME"
    return video


def add_aac(output):
    """A stereo AAC stream on ``output`` for :func:`audio_frame`'s chunks."""
    audio = output.add_stream("aac", rate=AUDIO_RATE)
    audio.layout = "stereo"
    audio.format = "fltp"
    audio.bit_rate = AUDIO_BIT_RATE
    return audio


def audio_frame(sound: np.ndarray, pts: int) -> av.AudioFrame:
    """A chunk of (2, n) float32 samples, starting at sample ``pts`` of the output."""
    chunk = av.AudioFrame.from_ndarray(sound, format="fltp", layout="stereo")
    chunk.sample_rate = AUDIO_RATE
    chunk.pts = pts
    chunk.time_base = Fraction(1, AUDIO_RATE)
    return chunk


# --- copying packets ------------------------------------------------------------------


def streams_like(output, streams) -> dict:
    """Output streams copying ``streams``' codecs, as {source stream index: output stream}."""
    return {stream.index: output.add_stream_from_template(stream) for stream in streams}


def copy_packets(
    source, output, streams: dict, on_video: Callable[[int], None] | None = None
) -> int:
    """Copy the packets of ``streams`` (see :func:`streams_like`) as they are.

    ``on_video(n)`` is called after the n-th video packet (it may raise to stop the
    copy). Returns the number of video packets copied.
    """
    copied = 0
    for packet in source.demux(*(source.streams[i] for i in streams)):
        # The demuxer ends each stream with an empty packet: nothing to copy.
        if packet.dts is None:
            continue
        is_video = packet.stream.type == "video"
        packet.stream = streams[packet.stream.index]
        output.mux(packet)
        if is_video:
            copied += 1
            if on_video is not None:
                on_video(copied)
    return copied


def remux(src, dst) -> RenderResult:
    """Copy ``src``'s video and audio into a faststart MP4 at ``dst``, without re-encoding."""
    src = Path(src)
    if not src.is_file():
        raise failure("source_missing")
    with replaced_when_done(dst) as tmp_name:
        try:
            _copy_into(src, tmp_name)
        except (av.FFmpegError, OSError) as exc:
            raise render_error(exc, "encode_failed") from exc
    return probe_result(dst)


def _copy_into(src: Path, tmp_name: str) -> None:
    try:
        source = av.open(str(src), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise render_error(exc, "source_corrupt") from exc
    with source, contextlib.closing(open_output(tmp_name)) as output:
        streams = streams_like(output, (*source.streams.video[:1], *source.streams.audio[:1]))
        copy_packets(source, output, streams)


# --- reading a soundtrack -------------------------------------------------------------


def open_audio(path, start: float) -> "AudioReader | None":
    """``path``'s soundtrack from video time ``start``; None (silence) if unreadable."""
    try:
        with av.open(str(path), metadata_errors="ignore") as probe:
            origin = stream_origin(video_stream(probe))
        return AudioReader(path, origin, start)
    except (av.FFmpegError, OSError, ValueError):
        logger.warning("audio of %s could not be opened; silence instead", path)
        return None


class AudioReader:
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
