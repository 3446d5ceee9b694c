"""Smooth, never-jumping interpolation of keyframed values (crop rectangles, ellipses).

Each component (x, y, width, height / x, y, rx, ry) is interpolated on its own with a
monotone cubic Hermite spline (Fritsch-Carlson): smooth through every keyframe, and,
unlike Catmull-Rom, it never overshoots, so between two keyframes a value stays between
their values. A crop window therefore never swings past where the user put it, and
never jumps. Before the first keyframe the first is held; after the last, the last.

``static/js/interpolation.js`` is the same algorithm for the browser preview; both are
checked against ``exports/interpolation_vectors.json`` so they provably agree.
"""

from bisect import bisect_right

CROP_KEYS = ("x", "y", "width", "height")
ELLIPSE_KEYS = ("x", "y", "rx", "ry")


def _secant_slopes(times, values):
    return [(values[i + 1] - values[i]) / (times[i + 1] - times[i]) for i in range(len(times) - 1)]


def _tangents(times, values):
    """Fritsch-Carlson tangents: zero at local extrema, limited so the curve is monotone."""
    n = len(times)
    if n < 2:
        return [0.0] * n
    d = _secant_slopes(times, values)
    m = [d[0]] + [0.0] * (n - 2) + [d[-1]]
    for i in range(1, n - 1):
        if d[i - 1] * d[i] <= 0:
            m[i] = 0.0
        else:
            # Weighted harmonic mean (Fritsch-Butland), monotone for uneven spacing.
            h0, h1 = times[i] - times[i - 1], times[i + 1] - times[i]
            w0, w1 = 2 * h1 + h0, h1 + 2 * h0
            m[i] = (w0 + w1) / (w0 / d[i - 1] + w1 / d[i])
    for end, slope in ((0, d[0]), (n - 1, d[-1])):
        if m[end] * slope <= 0:
            m[end] = 0.0
    return m


class Track:
    """One keyframed component, prepared once and evaluated at many times."""

    def __init__(self, times, values):
        self.times = list(times)
        self.values = list(values)
        self.tangents = _tangents(self.times, self.values)

    def at(self, t: float) -> float:
        times, values = self.times, self.values
        if t <= times[0]:
            return values[0]
        if t >= times[-1]:
            return values[-1]
        i = bisect_right(times, t) - 1
        h = times[i + 1] - times[i]
        s = (t - times[i]) / h
        s2, s3 = s * s, s * s * s
        return (
            (2 * s3 - 3 * s2 + 1) * values[i]
            + (s3 - 2 * s2 + s) * h * self.tangents[i]
            + (-2 * s3 + 3 * s2) * values[i + 1]
            + (s3 - s2) * h * self.tangents[i + 1]
        )


class KeyframePath:
    """Keyframes ``[{time, <keys>...}]`` (sorted by time, at least one) as a function of time."""

    def __init__(self, keyframes, keys):
        if not keyframes:
            raise ValueError("a path needs at least one keyframe")
        times = [float(k["time"]) for k in keyframes]
        self.keys = tuple(keys)
        self.tracks = {key: Track(times, [float(k[key]) for k in keyframes]) for key in keys}

    def at(self, t: float) -> dict:
        return {key: self.tracks[key].at(t) for key in self.keys}


def default_crop(frame_width: int, frame_height: int, aspect: float) -> dict:
    """The largest centred window of ``aspect`` (width / height) in the frame."""
    width, height = float(frame_width), float(frame_height)
    if width / height > aspect:
        width = height * aspect
    else:
        height = width / aspect
    return {
        "x": (frame_width - width) / 2,
        "y": (frame_height - height) / 2,
        "width": width,
        "height": height,
    }


def clamp_rect(rect: dict, frame_width: int, frame_height: int) -> dict:
    """Keep a rectangle inside the frame (keyframes are inside; rounding may not be)."""
    width = min(max(rect["width"], 1.0), float(frame_width))
    height = min(max(rect["height"], 1.0), float(frame_height))
    x = min(max(rect["x"], 0.0), frame_width - width)
    y = min(max(rect["y"], 0.0), frame_height - height)
    return {"x": x, "y": y, "width": width, "height": height}


class CropPath:
    """Where the crop window is at each source time of one clip."""

    def __init__(self, keyframes, frame_width, frame_height, aspect):
        self.frame_width, self.frame_height = frame_width, frame_height
        self.fixed = None if keyframes else default_crop(frame_width, frame_height, aspect)
        self.path = KeyframePath(keyframes, CROP_KEYS) if keyframes else None

    def at(self, t: float) -> dict:
        if self.fixed is not None:
            return dict(self.fixed)
        return clamp_rect(self.path.at(t), self.frame_width, self.frame_height)
