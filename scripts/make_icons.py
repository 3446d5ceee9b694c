"""Draw the web app icons under static/icons/ (listed in static/manifest.webmanifest).

The brand mark of the top bar (templates/base.html, app.css ``.brand-mark``): a rounded
square with a blue-to-violet gradient and a white play triangle. ``icon-<size>.png`` has
transparent corners; ``maskable-<size>.png`` fills the square with the page background
and keeps the mark inside the central 80 % safe zone, as launchers crop it to a circle
or a squircle. Uses OpenCV and NumPy (requirements.txt), no Pillow.

    .venv/bin/python scripts/make_icons.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ICONS = Path(__file__).resolve().parents[1] / "static" / "icons"
SIZES = (192, 512)
ACCENT = (0x5B, 0x93, 0xFF)  # app.css --accent
VIOLET = (0x8A, 0x5B, 0xFF)  # the brand mark's gradient end
BACKGROUND = (0x0E, 0x10, 0x14)  # app.css --bg
SUPERSAMPLE = 4


def _mark(size: int) -> np.ndarray:
    """The mark, RGBA, filling a ``size`` square (drawn large, then scaled down)."""
    big = size * SUPERSAMPLE
    t = (np.add.outer(np.arange(big), np.arange(big)) / (2 * big - 2))[..., None]
    rgb = (1 - t) * np.array(ACCENT) + t * np.array(VIOLET)
    mask = np.zeros((big, big), np.uint8)
    radius = int(big * 0.22)
    cv2.rectangle(mask, (radius, 0), (big - radius, big), 255, -1)
    cv2.rectangle(mask, (0, radius), (big, big - radius), 255, -1)
    for cx in (radius, big - radius - 1):
        for cy in (radius, big - radius - 1):
            cv2.circle(mask, (cx, cy), radius, 255, -1)
    triangle = np.array(
        [(0.38 * big, 0.28 * big), (0.38 * big, 0.72 * big), (0.74 * big, 0.5 * big)], np.int32
    )
    cv2.fillPoly(rgb, [triangle], (255, 255, 255))
    rgba = np.dstack([rgb, mask]).astype(np.uint8)
    return cv2.resize(rgba, (size, size), interpolation=cv2.INTER_AREA)


def _over(background: tuple[int, int, int], image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (RGBA) centred on a ``size`` square of ``background``, RGB."""
    canvas = np.empty((size, size, 3), np.float64)
    canvas[:] = background
    offset = (size - image.shape[0]) // 2
    area = canvas[offset : offset + image.shape[0], offset : offset + image.shape[1]]
    alpha = image[..., 3:4] / 255.0
    area[:] = alpha * image[..., :3] + (1 - alpha) * area
    return canvas.round().astype(np.uint8)


def _write(path: Path, rgb_or_rgba: np.ndarray) -> None:
    code = cv2.COLOR_RGBA2BGRA if rgb_or_rgba.shape[2] == 4 else cv2.COLOR_RGB2BGR
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb_or_rgba, code)):
        raise OSError(f"could not write {path}")


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        _write(ICONS / f"icon-{size}.png", _mark(size))
        _write(ICONS / f"maskable-{size}.png", _over(BACKGROUND, _mark(int(size * 0.62)), size))
    # iOS's home screen icon: opaque, 180 px, the corners rounded by the system.
    _write(ICONS / "apple-touch-icon.png", _over(BACKGROUND, _mark(150), 180))
    print(f"wrote {len(SIZES) * 2 + 1} icons to {ICONS}")


if __name__ == "__main__":
    main()
