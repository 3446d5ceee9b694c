"""Validation of the edits a client sends: crop keyframes, trim, slow-motion segments,
highlight regions.

Each ``clean_*`` function takes the decoded JSON value and returns the normalised value
to store, or raises ``EditError`` with a sentence the UI can show. Validation is strict
on structure (types, order, counts) and forgiving only on float noise: a rectangle a
hair outside the frame is clamped, one visibly outside is refused.
"""

import itertools
import math
import re

from django.conf import settings

from .models import HighlightRegion

# Crop rectangles come from a UI that keeps the aspect ratio locked; pixel rounding on
# small sources moves it a little, a different shape would be stretched by the export.
ASPECT_TOLERANCE = 0.02
# How far (in pixels) a rectangle may poke out of the frame and still be clamped in.
PIXEL_SLACK = 0.5
TIME_SLACK = 1e-3
SPEEDS = (0.5, 1.0)
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


class EditError(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


def _number(value, what: str, field: str) -> float:
    # bool is an int subclass: true/false are not coordinates.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EditError(f"{what} must be a number.", field)
    try:
        number = float(value)
    except OverflowError:  # a JSON integer with hundreds of digits
        raise EditError(f"{what} must be a number.", field) from None
    if not math.isfinite(number):
        raise EditError(f"{what} must be a number.", field)
    return number


def _object(item, keys, what: str, field: str) -> dict:
    if not isinstance(item, dict):
        raise EditError(f"Each {what} must be an object.", field)
    missing = [k for k in keys if k not in item]
    if missing:
        raise EditError(f"Each {what} needs {', '.join(missing)}.", field)
    return item


def _list(value, what: str, field: str, limit: int) -> list:
    if not isinstance(value, list):
        raise EditError(f"{what} must be a list.", field)
    if len(value) > limit:
        raise EditError(f"At most {limit} {what} are allowed.", field)
    return value


def _time(value, duration: float, what: str, field: str, earliest: float = 0.0) -> float:
    """A time within ``earliest``-``duration`` (a clip's bounds: 0 and its length, or
    its range of a game), nudged inside when it is off by less than TIME_SLACK."""
    t = _number(value, what, field)
    if t < earliest - TIME_SLACK or t > duration + TIME_SLACK:
        raise EditError(f"{what} {t:g}s is outside the clip ({earliest:g}-{duration:g}s).", field)
    return min(max(t, earliest), duration)


def _increasing(times, what: str, field: str) -> None:
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise EditError(f"{what} must be in increasing time order, one per time.", field)


def clean_crop_keyframes(
    value, *, frame_width, frame_height, duration, aspect, earliest=0.0
) -> list[dict]:
    field = "crop_keyframes"
    items = _list(value, "crop keyframes", field, settings.MAX_KEYFRAMES_PER_CLIP)
    cleaned = []
    for item in items:
        item = _object(item, ("time", "x", "y", "width", "height"), "crop keyframe", field)
        time = _time(item["time"], duration, "Keyframe time", field, earliest)
        x, y, w, h = (_number(item[k], f"Crop {k}", field) for k in ("x", "y", "width", "height"))
        if w <= 1 or h <= 1:
            raise EditError("A crop rectangle must be wider and taller than one pixel.", field)
        if (
            x < -PIXEL_SLACK
            or y < -PIXEL_SLACK
            or x + w > frame_width + PIXEL_SLACK
            or y + h > frame_height + PIXEL_SLACK
        ):
            size = f"{frame_width}x{frame_height}"
            raise EditError(
                f"The crop rectangle at {time:g}s goes outside the {size} frame.", field
            )
        if abs(w / h - aspect) / aspect > ASPECT_TOLERANCE:
            raise EditError(
                f"The crop rectangle at {time:g}s is not in the project's aspect ratio.", field
            )
        w, h = min(w, frame_width), min(h, frame_height)
        x = min(max(x, 0.0), frame_width - w)
        y = min(max(y, 0.0), frame_height - h)
        cleaned.append({"time": time, "x": x, "y": y, "width": w, "height": h})
    _increasing([k["time"] for k in cleaned], "Crop keyframes", field)
    return cleaned


def clean_trim(value, *, duration, earliest=0.0) -> tuple[float | None, float | None]:
    """``(start, end)``, or ``(None, None)`` for no trim."""
    if value is None:
        return None, None
    if not isinstance(value, dict) or not {"start", "end"} <= value.keys():
        raise EditError("Trim must be null or an object with start and end.", "trim")
    item = value
    start = _time(item["start"], duration, "Trim start", "trim", earliest)
    end = _time(item["end"], duration, "Trim end", "trim", earliest)
    if end - start < 0.1:
        raise EditError("The trimmed clip must be at least 0.1 s long.", "trim")
    return start, end


def clean_segments(value, *, duration, earliest=0.0) -> list[dict]:
    field = "segments"
    items = _list(value, "slow-motion segments", field, settings.MAX_SEGMENTS_PER_CLIP)
    cleaned = []
    for item in items:
        item = _object(item, ("start", "end", "speed"), "segment", field)
        start = _time(item["start"], duration, "Segment start", field, earliest)
        end = _time(item["end"], duration, "Segment end", field, earliest)
        speed = _number(item["speed"], "Segment speed", field)
        if speed not in SPEEDS:
            raise EditError("Segment speed must be 0.5 or 1.", field)
        if end <= start:
            raise EditError("A segment must end after it starts.", field)
        cleaned.append({"start": start, "end": end, "speed": speed})
    for previous, current in itertools.pairwise(cleaned):
        if current["start"] < previous["end"]:
            raise EditError("Segments must be in time order and must not overlap.", field)
    return cleaned


def clean_highlight_regions(value, *, frame_width, frame_height, duration) -> list[dict]:
    field = "regions"
    items = _list(value, "highlight regions", field, settings.MAX_HIGHLIGHT_REGIONS)
    return [_clean_region(item, frame_width, frame_height, duration) for item in items]


def _clean_region(item, frame_width, frame_height, duration) -> dict:
    field = "regions"
    item = _object(item, ("start", "end", "effect", "keyframes"), "highlight region", field)
    start = _time(item["start"], duration, "Region start", field)
    end = _time(item["end"], duration, "Region end", field)
    if end <= start:
        raise EditError("A highlight region must end after it starts.", field)
    effect = item["effect"]
    if effect not in HighlightRegion.Effect.values:
        raise EditError("Effect must be dim_outside or brighten_inside.", field)
    color = item.get("color", "#ffd400")
    if not isinstance(color, str) or not _COLOR_RE.match(color):
        raise EditError("Colour must look like #ffd400.", field)
    stroke = item.get("stroke_width", 4)
    if isinstance(stroke, bool) or not isinstance(stroke, int) or not 0 <= stroke <= 40:
        raise EditError("Stroke width must be a whole number of pixels from 0 to 40.", field)
    keyframes = _list(item["keyframes"], "region keyframes", field, settings.MAX_KEYFRAMES_PER_CLIP)
    if not keyframes:
        raise EditError("A highlight region needs at least one keyframe.", field)
    cleaned = []
    for kf in keyframes:
        kf = _object(kf, ("time", "x", "y", "rx", "ry"), "region keyframe", field)
        time = _time(kf["time"], duration, "Keyframe time", field)
        x, y, rx, ry = (_number(kf[k], f"Ellipse {k}", field) for k in ("x", "y", "rx", "ry"))
        if not (0 <= x <= frame_width and 0 <= y <= frame_height):
            raise EditError(f"The ellipse centre at {time:g}s is outside the video.", field)
        if not (1 <= rx <= frame_width and 1 <= ry <= frame_height):
            raise EditError(f"The ellipse radii at {time:g}s are out of range.", field)
        if not start - TIME_SLACK <= time <= end + TIME_SLACK:
            raise EditError(f"The keyframe at {time:g}s is outside its region's time span.", field)
        cleaned.append({"time": time, "x": x, "y": y, "rx": rx, "ry": ry})
    _increasing([k["time"] for k in cleaned], "Region keyframes", field)
    return {
        "start": start,
        "end": end,
        "effect": effect,
        "color": color.lower(),
        "stroke_width": stroke,
        "keyframes": cleaned,
    }
