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
        target = int(duration * at / stream.time_base) if duration else 0
        container.seek(target, stream=stream, backward=True, any_frame=False)
        image = None
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="bgr24")
            if frame.pts is not None and frame.pts >= target:
                break
    if image is None:
        raise OSError(f"{Path(video_path).name} has no frame to make a poster of")
    height, width = image.shape[:2]
    if width > MAX_WIDTH:
        image = cv2.resize(image, (MAX_WIDTH, round(height * MAX_WIDTH / width)),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError("the poster could not be encoded")
    out_path.write_bytes(encoded.tobytes())
    return out_path
