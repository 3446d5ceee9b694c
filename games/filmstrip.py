"""A game's poster and filmstrip: what makes a two-hour video navigable at a glance.

The filmstrip is one JPEG sprite of small tiles taken at even intervals (the browser
loads one image, not a hundred), with the time of each tile. Each tile is found by a
seek to the nearest keyframe before its time and a decode forward to it, so the cost
grows with the number of tiles, not with the length of the game.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from exports.posters import frame_at, write_jpeg

TILE_HEIGHT = 90
COLUMNS = 10
JPEG_QUALITY = 80
POSTER_WIDTH = 640
# Where the poster comes from, as a share of the duration: past kick-off formalities.
POSTER_AT = 0.1


@dataclass(frozen=True)
class Filmstrip:
    sprite: Path
    poster: Path
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    times: list[float]

    def layout(self) -> dict:
        """The game row's ``filmstrip`` without the file name (the caller stores it)."""
        return {
            "columns": self.columns,
            "rows": self.rows,
            "tile_width": self.tile_width,
            "tile_height": self.tile_height,
            "times": self.times,
        }


def tile_times(duration: float, tiles: int) -> list[float]:
    """``tiles`` times spread over the video, each in the middle of its share."""
    count = max(1, tiles)
    return [round(duration * (i + 0.5) / count, 3) for i in range(count)]


def make_filmstrip(
    source: str,
    out_dir: Path,
    *,
    duration: float,
    width: int,
    height: int,
    tiles: int,
    progress: Callable[[int, int], None] = lambda done, total: None,
    should_cancel: Callable[[], bool] = lambda: False,
) -> Filmstrip:
    """Write ``poster.jpg`` and ``filmstrip.jpg`` into ``out_dir`` for the video at
    ``source``. ``progress(done, total)`` after each tile; ``should_cancel()`` is asked
    between tiles and stops the work with :class:`Cancelled`."""
    tile_width = max(2, round(TILE_HEIGHT * width / height))
    times = tile_times(duration, tiles)
    rows = -(-len(times) // COLUMNS)
    columns = min(COLUMNS, len(times))
    sprite = np.zeros((rows * TILE_HEIGHT, columns * tile_width, 3), dtype=np.uint8)
    with av.open(source, options={"protocol_whitelist": "file"}) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, moment in enumerate(times):
            if should_cancel():
                raise Cancelled
            frame = frame_at(container, stream, moment)
            if frame is not None:
                tile = cv2.resize(frame, (tile_width, TILE_HEIGHT), interpolation=cv2.INTER_AREA)
                row, column = divmod(index, COLUMNS)
                y, x = row * TILE_HEIGHT, column * tile_width
                sprite[y : y + TILE_HEIGHT, x : x + tile_width] = tile
            progress(index + 1, len(times) + 1)
        poster = frame_at(container, stream, duration * POSTER_AT)
    sprite_path, poster_path = out_dir / "filmstrip.jpg", out_dir / "poster.jpg"
    write_jpeg(sprite_path, sprite, JPEG_QUALITY)
    if poster is None:
        poster = np.zeros((height, width, 3), dtype=np.uint8)
    poster_height = max(2, round(POSTER_WIDTH * height / width))
    write_jpeg(poster_path, cv2.resize(poster, (POSTER_WIDTH, poster_height)), JPEG_QUALITY)
    progress(len(times) + 1, len(times) + 1)
    return Filmstrip(sprite_path, poster_path, columns, rows, tile_width, TILE_HEIGHT, times)


class Cancelled(Exception):
    pass
