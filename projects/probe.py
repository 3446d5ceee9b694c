"""Decide whether an uploaded file is a video we can work with.

:func:`probe_video` opens the file with PyAV (FFmpeg), reads the container headers,
decodes the first frame and one frame near the end, and either returns a
:class:`VideoInfo` or raises :class:`InvalidVideo` with a sentence fit to show the
uploader. The work is bounded: a 2 GB upload costs two short decodes, not a full pass.
"""

import math
from dataclasses import dataclass

import av

MAX_DIMENSION = 8192
MAX_FPS = 240.0

# Where the "is the end of the file really there?" check looks, as a share of duration.
END_CHECK_POSITION = 0.9
# Upper bounds on the packets one check may read, so a hostile or pathological file cannot
# make probing run for ever. Normal files stop after a handful. Demuxing without decoding
# is cheap, hence the larger allowance (about 15 minutes of 60 fps video).
MAX_PACKETS_TO_DECODE = 1000
MAX_PACKETS_TO_DEMUX = 60_000

# The first box of an MP4/MOV file: "ftyp" normally, the others in old QuickTime files.
MP4_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"uuid"}
MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # EBML header, shared by Matroska and WebM
# PNG, JPEG, GIF and BMP. Left to guess, FFmpeg opens a lone picture as a one-frame
# "video" (png_pipe, jpeg_pipe, image2...); sniffing first refuses it with a clear reason.
IMAGE_MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
# HEIF/AVIF photos are ISO boxes like MP4, told apart only by the "ftyp" brand.
IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}

GENERIC_MESSAGE = "This file could not be read as a video. It may be damaged or not a video at all."
IMAGE_MESSAGE = "This file is an image, not a video. Please upload a video file."
UNSUPPORTED_MESSAGE = (
    "This file is not a video in a supported format. "
    "Please upload an MP4, MOV, MKV, WebM or AVI file."
)


class InvalidVideo(Exception):
    """The upload is not a usable video; ``str(exc)`` is a sentence for the user."""


@dataclass(frozen=True)
class VideoInfo:
    container: str  # short format name: "mp4", "mov", "matroska", "webm", "avi"
    extension: str  # extension to store the file with, derived from the container
    duration: float  # seconds
    fps: float
    width: int
    height: int
    frame_count: int
    has_audio: bool
    codec: str


def probe_video(path):
    """Return a :class:`VideoInfo` for ``path`` or raise :class:`InvalidVideo`."""
    try:
        demuxer = _sniff_demuxer(path)
        with av.open(
            str(path),
            format=demuxer,
            # Belt and braces next to the forced demuxer: never let a file make FFmpeg
            # open anything but local files.
            options={"protocol_whitelist": "file"},
            metadata_errors="ignore",
        ) as container:
            return _probe_open_container(container)
    except InvalidVideo:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        # FFmpeg's errors name file paths and codec internals; the user only needs to
        # know the file is unusable. The cause stays chained for the logs.
        raise InvalidVideo(GENERIC_MESSAGE) from exc


def _sniff_demuxer(path):
    """Pick the FFmpeg demuxer from the file's magic bytes, or refuse the file.

    Letting FFmpeg guess would let an upload choose among all of its demuxers, some
    of which (HLS playlists, concat lists) open further files or URLs named inside the
    upload. Only the containers we store are allowed through, and FFmpeg is told which.
    """
    with open(path, "rb") as f:
        return demuxer_for_head(f.read(16))


def demuxer_for_head(head: bytes) -> str:
    """The demuxer for a file that starts with ``head`` (its first 16 bytes), or
    InvalidVideo: a chunked upload checks its first chunk with this before the rest."""
    if not head:
        raise InvalidVideo("This file is empty.")
    if head[4:8] == b"ftyp" and head[8:12] in IMAGE_BRANDS:
        raise InvalidVideo(IMAGE_MESSAGE)
    if head[4:8] in MP4_BOX_TYPES:
        return "mov"
    if head.startswith(MATROSKA_MAGIC):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(IMAGE_MAGICS) or (head.startswith(b"RIFF") and head[8:12] == b"WEBP"):
        raise InvalidVideo(IMAGE_MESSAGE)
    raise InvalidVideo(UNSUPPORTED_MESSAGE)


def _probe_open_container(container):
    container_name, extension = _identify_container(container)
    stream = _pick_video_stream(container)
    duration = _duration(container, stream)
    fps = _frame_rate(stream)
    info = VideoInfo(
        container=container_name,
        extension=extension,
        duration=duration,
        fps=fps,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        frame_count=_frame_count(stream, duration, fps),
        has_audio=len(container.streams.audio) > 0,
        codec=stream.codec_context.name,
    )
    _check_numbers(info)
    _check_first_frame(container, stream)
    _check_end_is_present(container, stream, info.duration)
    return info


def _identify_container(container):
    """Map FFmpeg's demuxer to ``(container, extension)``.

    FFmpeg's demuxer names cover families ("mov,mp4,m4a,..." or "matroska,webm"), so the
    exact member is worked out from the file itself. The extension comes from here and
    never from the client's filename, which is free to lie.
    """
    names = set(container.format.name.split(","))
    if "mp4" in names or "mov" in names:
        # QuickTime files declare the "qt  " brand, or (very old ones) no ftyp box at all.
        brand = container.metadata.get("major_brand", "qt  ").strip()
        return ("mov", "mov") if brand == "qt" else ("mp4", "mp4")
    if "matroska" in names:
        return ("webm", "webm") if _is_webm(container) else ("matroska", "mkv")
    if "avi" in names:
        return ("avi", "avi")
    # Unreachable while _sniff_demuxer forces one of the demuxers above; kept so a new
    # demuxer added there cannot silently get a wrong extension.
    raise InvalidVideo(UNSUPPORTED_MESSAGE)


def _is_webm(container):
    # The matroska demuxer does not report the DocType, but WebM only allows these codecs,
    # so a Matroska file using nothing else is stored as WebM (browsers play it as such).
    webm_codecs = {"vp8", "vp9", "av1", "opus", "vorbis"}
    codecs = {s.codec_context.name for s in container.streams if s.type in ("video", "audio")}
    return bool(codecs) and codecs <= webm_codecs


def _pick_video_stream(container):
    # Cover art in an audio file shows up as a one-picture video stream flagged
    # "attached_pic"; it must not make a song count as a video.
    streams = [
        s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
    ]
    if not streams:
        raise InvalidVideo("This file has no video track. Please upload a video file.")
    return streams[0]


def _duration(container, stream):
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    # Matroska and some AVI files only know the duration of the whole container.
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _frame_rate(stream):
    # average_rate is what the frames actually average to; guessed_rate covers formats
    # that only declare a nominal rate.
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _frame_count(stream, duration, fps):
    # Only some containers (MP4/MOV, AVI) store a frame count; estimate it otherwise.
    if stream.frames and stream.frames > 0:
        return stream.frames
    if math.isfinite(duration) and math.isfinite(fps):
        return round(duration * fps)
    return 0


def _check_numbers(info):
    if info.width <= 0 or info.height <= 0:
        raise InvalidVideo("This video has no picture size, so it cannot be played.")
    if info.width > MAX_DIMENSION or info.height > MAX_DIMENSION:
        raise InvalidVideo(
            f"This video is {info.width}x{info.height} pixels; "
            f"videos larger than {MAX_DIMENSION} pixels on a side are not supported."
        )
    if not math.isfinite(info.duration) or info.duration <= 0:
        raise InvalidVideo("This video has no length, so it cannot be played.")
    if not math.isfinite(info.fps) or info.fps <= 0 or info.fps > MAX_FPS:
        raise InvalidVideo(
            f"This video's frame rate ({info.fps:g} fps) is not supported; "
            f"it must be above 0 and at most {MAX_FPS:g} frames per second."
        )
    if info.frame_count < 2:
        raise InvalidVideo("This file holds a single picture, not a video.")


def _check_first_frame(container, stream):
    if _decode_first_frame(container, stream) is None:
        raise InvalidVideo("The first frame of this video could not be decoded.")


def _check_end_is_present(container, stream, duration):
    """Read near the end, so a cut-off upload is refused now and not halfway through an edit.

    A faststart MP4 carries its complete index up front, so a file cut in half still
    opens and reports the full duration; only reading the tail shows the data is gone.
    """
    if not stream.time_base:
        return
    target = (stream.start_time or 0) + int(duration * END_CHECK_POSITION / stream.time_base)

    try:
        # Seeking lands on the keyframe at or before the target: it must decode.
        container.seek(target, stream=stream, backward=True)
        decodes = _decode_first_frame(container, stream) is not None

        # That keyframe may be far from the target (long GOPs, or a single keyframe at
        # the start), so separately check that the packets up to the target can be read.
        # Where the index allows, any_frame lands right next to the target; demuxing
        # without decoding keeps the walk from a distant keyframe cheap.
        container.seek(target, stream=stream, backward=True, any_frame=True)
        present = decodes and _packets_reach(container, stream, target)
    except (av.FFmpegError, OSError, EOFError):
        # Read errors past the start are what a cut-off file looks like.
        present = False
    if not present:
        raise InvalidVideo(
            "This video appears to be truncated or corrupt: its end could not be read."
        )


def _decode_first_frame(container, stream):
    """Decode from the current position until a frame comes out; None if none does.

    Errors on individual packets are tolerated while looking, as players do, because a
    stream may start with packets that reference frames before it.
    """
    decoder = stream.codec_context
    decoder.flush_buffers()
    for count, packet in enumerate(container.demux(stream)):
        if count >= MAX_PACKETS_TO_DECODE:
            break
        try:
            frames = decoder.decode(packet)
        except av.FFmpegError:
            continue
        if frames:
            return frames[0]
    return None


def _packets_reach(container, stream, target):
    """Whether packets can be demuxed from the current position up to ``target``."""
    for count, packet in enumerate(container.demux(stream)):
        if count >= MAX_PACKETS_TO_DEMUX:
            break
        if packet.pts is not None and packet.pts + (packet.duration or 0) >= target:
            return True
    return False
