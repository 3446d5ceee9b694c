"""Highlight ellipses drawn in place on yuv420p frames (the overlay render's drawing).

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
colour conversion is needed.
"""

import json
import math
from pathlib import Path

import cv2
import numpy as np

from .errors import RenderError
from .interpolation import ELLIPSE_KEYS, KeyframePath
from .render import RegionSpec

DIM_OUTSIDE = "dim_outside"
BRIGHTEN_INSIDE = "brighten_inside"
EFFECTS = (DIM_OUTSIDE, BRIGHTEN_INSIDE)

# The effects' numbers: one file shared with the overlay editor's preview
# (static/js/overlay/effects.js); exports/highlight_effects_vectors.json pins both.
EFFECTS_FILE = Path(__file__).resolve().parents[1] / "static" / "js" / "highlight_effects.json"
_FX = json.loads(EFFECTS_FILE.read_text())
DIM_FACTOR = _FX["dim_outside"]["factor"]  # outside a spotlight, RGB is multiplied by this
BRIGHTEN_AMOUNT = _FX["brighten_inside"]["amount"]  # inside: RGB moves this far to white
FEATHER_MIN_PX = _FX["feather"]["min_px"]
FEATHER_DIVISOR = _FX["feather"]["divisor"]
STROKE_CHROMA_SCALE = _FX["stroke"]["chroma_scale"]
STROKE_CHROMA_MIN_PX = _FX["stroke"]["chroma_min_px"]
_GREY = _FX["yuv"]["grey"]
_RANGES = _FX["yuv"]["ranges"]  # "limited" / "full": black, white, luma_scale, chroma_scale
_MATRICES = _FX["yuv"]["matrices"]  # "bt709" / "bt601": kr, kb

# Masks hold weights 0..128 (not 255) so blending fits int16 and divides by a shift.
_WEIGHT_BITS = 7
_WEIGHT_ONE = 1 << _WEIGHT_BITS
_SHIFT = 4  # cv2 drawing with 4 fractional bits: ellipses move by 1/16 px, never jump
_ONE = 1 << _SHIFT


def _parse_color(color: str) -> tuple[int, int, int]:
    if not (isinstance(color, str) and len(color) == 7 and color.startswith("#")):
        raise RenderError(f"Bad highlight colour {color!r}.", "invalid_region")
    try:
        return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    except ValueError:
        raise RenderError(f"Bad highlight colour {color!r}.", "invalid_region") from None


class RegionPainter:
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
    matrix = _MATRICES["bt709" if bt709 else "bt601"]
    kr, kb = matrix["kr"], matrix["kb"]
    r, g, b = (c / 255 for c in rgb)
    y = kr * r + (1 - kr - kb) * g + kb * b
    pb, pr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    levels = _RANGES["full" if full_range else "limited"]
    luma, chroma, black = levels["luma_scale"], levels["chroma_scale"], levels["black"]
    return tuple(
        int(np.clip(round(v), 0, 255))
        for v in (black + luma * y, _GREY + chroma * pb, _GREY + chroma * pr)
    )


def outline_widths(stroke: int) -> tuple[int, int] | None:
    """The outline's width on the luma plane and on the half-size chroma planes."""
    if stroke <= 0:
        return None
    return stroke, max(STROKE_CHROMA_MIN_PX, round(stroke * STROKE_CHROMA_SCALE))


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


class Canvas:
    """Draws regions onto yuv420p frames of one size and colour matrix."""

    def __init__(self, frame):
        self.width, self.height = frame.width, frame.height
        bt709 = int(frame.colorspace) == 1
        self.full_range = int(frame.color_range) == 2
        self.bt709 = bt709
        levels = _RANGES["full" if self.full_range else "limited"]
        black, white = levels["black"], levels["white"]
        dim = _towards(black, DIM_FACTOR), _towards(_GREY, DIM_FACTOR)
        bright = _towards(white, 1 - BRIGHTEN_AMOUNT), _towards(_GREY, 1 - BRIGHTEN_AMOUNT)
        # Per plane (Y, U, V): luma moves towards black or white, chroma towards grey.
        self.maps = {DIM_OUTSIDE: (dim[0], dim[1], dim[1]), BRIGHTEN_INSIDE: (*bright, bright[1])}
        # "A few pixels" of soft edge, in proportion to the frame: 4 px at 1080 wide.
        self.feather = max(FEATHER_MIN_PX, round(min(self.width, self.height) / FEATHER_DIVISOR))
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
                thickness = outline_widths(stroke)[1]
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
