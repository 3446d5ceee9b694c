"""A still of a rendered video, as a JPEG: the poster of a final video's share page."""

from pathlib import Path

import av
import cv2

# A third of the way in: past the title card and the first frames of the first play.
POSTER_AT = 1 / 3
JPEG_QUALITY = 85
MAX_WIDTH = 1080


def write_poster(video_path, out_path: Path, *, at: float = POSTER_AT) -> Path:
    """Write a JPEG of the frame ``at`` of the way through ``video_path`` to ``out_path``."""
    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        image = frame_at(container, stream, duration * at)
    if image is None:
        raise OSError(f"{Path(video_path).name} has no frame to make a poster of")
    height, width = image.shape[:2]
    if width > MAX_WIDTH:
        image = cv2.resize(image, (MAX_WIDTH, round(height * MAX_WIDTH / width)),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
    write_jpeg(out_path, image, JPEG_QUALITY)
    return out_path


def frame_at(container, stream, seconds: float):
    """The first frame at or after ``seconds`` of ``stream`` as a BGR array (the last
    one when that is past the end; None when there is none): a seek to the keyframe
    before it, then a decode forward, so the cost does not grow with the video."""
    target = int(seconds / stream.time_base) + (stream.start_time or 0)
    container.seek(max(target, 0), stream=stream, backward=True, any_frame=False)
    last = None
    for frame in container.decode(stream):
        last = frame
        if frame.pts is not None and frame.pts >= target:
            break
    return last.to_ndarray(format="bgr24") if last is not None else None


def write_jpeg(path: Path, image, quality: int) -> None:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"{Path(path).name} could not be encoded")
    Path(path).write_bytes(encoded.tobytes())
