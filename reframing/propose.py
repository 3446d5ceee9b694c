"""A proposal of crop keyframes that follow the play, for one clip and an aspect ratio.

``propose(path, aspect)`` analyses the clip (:mod:`reframing.vision`), picks a target
per analysed frame (the ball where it was found; in a gap, where it was last or will
next be seen; else the centre of the players' motion; else where the camera last
aimed), films it with the virtual camera of :mod:`reframing.camera_path`, and returns
at most about one keyframe per second in the shape of ``Clip.crop_keyframes`` (source
pixels). It never touches a clip: the user accepts a proposal (the editor writes it as
ordinary keyframes) or discards it.
"""

from dataclasses import dataclass

import numpy as np

from . import camera_path, vision

# The virtual camera, in fractions of the source's width (or height) per second: quick
# enough for a long pass, never a whip pan.
MAX_SPEED = 0.9
MAX_ACCEL = 5.0
RESPONSE = 0.15  # s
LEAD = 0.2  # s
DEAD_ZONE = 0.03  # of the window: the picture stays still while the ball is near its centre
BALL_HOLD = 1.0  # s: aim where the ball was last seen before falling back to the players
# s: aim where the ball will come back this long before it does (the clip is known whole,
# and a window a third of the frame wide needs about this long to cross the picture).
BALL_AHEAD = 1.2
MARGIN = 0.05  # of the window: how far inside its edges a ball seen stays once simplified
TOLERANCE = 0.06  # of the window: how far the keyframes' path may stray from the camera's


@dataclass(frozen=True)
class Proposal:
    keyframes: list[dict]  # [{time, x, y, width, height}]
    window: tuple[float, float]
    ball_seen: float  # fraction of analysed frames where the ball was found
    samples: int

    def to_dict(self) -> dict:
        return {
            "keyframes": self.keyframes,
            "window": {"width": self.window[0], "height": self.window[1]},
            "ball_seen": round(self.ball_seen, 3),
            "samples": self.samples,
        }


def window_for(width: int, height: int, aspect: float) -> tuple[float, float]:
    """The largest window of ``aspect`` (width / height) inside the source frame."""
    if width / height > aspect:
        return (round(height * aspect, 2), float(height))
    return (float(width), round(width / aspect, 2))


def propose(
    path, aspect: float, *, start=0.0, end=None, progress=None, should_cancel=None, detector=None
):
    import av

    with av.open(str(path)) as container:
        codec = container.streams.video[0].codec_context
        size = (codec.width, codec.height)
    window = window_for(*size, aspect)
    observations, size = vision.analyse(
        path,
        window=window,
        start=start,
        end=end,
        progress=progress,
        should_cancel=should_cancel,
        detector=detector,
    )
    return from_observations(observations, size, window)


def targets(observations) -> np.ndarray:
    """(n, 2) aim points: the ball; where it was last seen, for ``BALL_HOLD`` seconds
    after it goes (out of the picture or behind a player, it often comes back near
    there); where it will next be seen, for ``BALL_AHEAD`` seconds before it is (it may
    come back far away: from the other edge, after a long pass); between the two, the
    action; else NaN (hold)."""
    points = np.full((len(observations), 2), np.nan)
    next_ball, next_time = [None] * len(observations), [np.inf] * len(observations)
    upcoming, upcoming_time = None, np.inf
    for i in range(len(observations) - 1, -1, -1):
        if observations[i].ball is not None:
            upcoming, upcoming_time = observations[i].ball, observations[i].time
        next_ball[i], next_time[i] = upcoming, upcoming_time
    last_ball, last_time = None, -np.inf
    for i, seen in enumerate(observations):
        if seen.ball is not None:
            last_ball, last_time = seen.ball, seen.time
        if seen.time - last_time <= BALL_HOLD:
            point = last_ball
        elif next_time[i] - seen.time <= BALL_AHEAD:
            point = next_ball[i]
        else:
            point = seen.action
        if point is not None:
            points[i] = point
    return points


def from_observations(observations, size, window) -> Proposal:
    width, height = size
    if len(observations) < 2:
        centre = [(width - window[0]) / 2, (height - window[1]) / 2]
        frames = [{"time": 0.0, "x": centre[0], "y": centre[1],
                   "width": window[0], "height": window[1]}]  # fmt: skip
        return Proposal(frames, window, 0.0, len(observations))
    times = np.array([o.time for o in observations])
    # follow() wants evenly spaced samples: the analysis rate, resampled.
    even = np.arange(times[0], times[-1] + 1e-9, 1.0 / vision.ANALYSIS_FPS)
    aims = targets(observations)
    centres = np.column_stack(
        [_film(times, even, aims[:, axis], window[axis], (width, height)[axis]) for axis in (0, 1)]
    )
    tolerance = TOLERANCE * min(window)
    # The ball wherever it was seen must stay inside the simplified window, a margin in
    # from its edges: the camera's path keeps it there, keyframes at most one a second
    # would otherwise cut the corners of a fast pass.
    half, extent = np.array(window) / 2, np.array(size, dtype=np.float64)
    balls = _balls_at(observations, times, even)
    balls[:, extent - 2 * half < 1.0] = np.nan  # the window fills that axis: always inside
    inside = (balls, half - MARGIN * min(window))
    kept = camera_path.simplify(even, centres, tolerance, keep_inside=inside)
    centres[kept] = camera_path.fit_inside(even, centres, kept, inside, half, extent - half)
    keyframes = [
        {
            "time": round(float(even[i]), 4),
            "x": round(float(centres[i, 0] - window[0] / 2), 2),
            "y": round(float(centres[i, 1] - window[1] / 2), 2),
            "width": window[0],
            "height": window[1],
        }
        for i in kept
    ]
    seen = sum(o.ball is not None for o in observations) / len(observations)
    return Proposal(keyframes, window, seen, len(observations))


def _balls_at(observations, times, even) -> np.ndarray:
    """(n, 2): the ball at each of ``even`` times where an analysed frame within half a
    sample of it saw the ball, else NaN."""
    balls = np.array([o.ball if o.ball is not None else (np.nan, np.nan) for o in observations])
    after = np.searchsorted(times, even).clip(1, len(times) - 1)
    nearest = np.where(even - times[after - 1] < times[after] - even, after - 1, after)
    balls = balls[nearest]
    balls[np.abs(times[nearest] - even) > 0.5 / vision.ANALYSIS_FPS] = np.nan
    return balls


def _film(times, even, aim, window: float, extent: float) -> np.ndarray:
    """The camera centre along one axis at ``even`` times."""
    low, high = window / 2, extent - window / 2
    if high - low < 0.5:  # the window fills this axis: nothing to follow
        return np.full(len(even), extent / 2)
    known = ~np.isnan(aim)
    if known.any():
        # NaN where nothing was seen, so the camera holds rather than drifts.
        aim_even = np.interp(even, times[known], aim[known])
        nearest = np.searchsorted(times, even).clip(0, len(times) - 1)
        aim_even[np.isnan(aim[nearest])] = np.nan
    else:
        aim_even = np.full(len(even), np.nan)
    limits = camera_path.Limits(
        max_speed=MAX_SPEED * extent,
        max_accel=MAX_ACCEL * extent,
        lead=LEAD,
        dead_zone=DEAD_ZONE * window,
        response=RESPONSE,
    )
    return camera_path.follow_both_ways(even, aim_even, low, high, limits)
