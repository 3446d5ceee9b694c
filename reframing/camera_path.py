"""From a noisy "where the action is" per sample to the path a camera operator would film.

Three steps, each a plain function of arrays so it can be tested on its own
(``follow_both_ways`` runs step 1 forwards and backwards and takes the mean):

1. ``follow``: a virtual camera chases the target with bounded speed and acceleration,
   looking ``lead`` seconds ahead, and brakes in time to stop at the frame's edges. A
   dead zone keeps it still while the action stays near the centre of the window, so
   small jitters of the target never move the picture.
2. The result always lies in ``[low, high]`` (the window stays inside the frame).
3. ``simplify``: as few keyframes as keep the path within ``tolerance`` pixels *as the
   app interpolates them* (monotone cubic, exports/interpolation.py), at most about one
   per second, so a person can still edit the proposal by hand. Given points that must
   stay inside the window (the ball where it was seen), it spends keyframes on those
   first, and ``fit_inside`` moves the kept keyframes where the budget ran out: a path
   cut short at one keyframe a second is what let a fast pass out of the window.
"""

from dataclasses import dataclass

import numpy as np

from exports.interpolation import Track


@dataclass(frozen=True)
class Limits:
    """How the virtual camera may move, in pixels of the source and seconds."""

    max_speed: float  # px/s
    max_accel: float  # px/s^2
    lead: float = 0.3  # s: aim where the action will be, not where it was
    dead_zone: float = 0.0  # px either side of the window's centre where it stays still
    response: float = 0.5  # s: how quickly it closes the gap (a proportional gain of 1/response)


def follow(times, target, low: float, high: float, limits: Limits) -> np.ndarray:
    """The camera centre at each of ``times`` (evenly spaced) chasing ``target``.

    ``target`` may contain NaN where nothing was seen: the camera then aims where it
    last aimed. Speeds stay within ``max_speed`` and changes of speed within
    ``max_accel`` (up to float rounding), and every value within ``[low, high]``.
    """
    times = np.asarray(times, dtype=np.float64)
    target = _filled(np.asarray(target, dtype=np.float64), (low + high) / 2)
    if len(times) < 2:
        return np.clip(target, low, high)
    dt = float(times[1] - times[0])
    lead_steps = max(0, round(limits.lead / dt))
    # Aims beyond an edge count as the dead zone past it, so a ball at the edge of the
    # picture brings the window right up to that edge instead of a dead zone short.
    reach = limits.dead_zone
    aim = np.clip(
        np.concatenate([target[lead_steps:], np.repeat(target[-1:], lead_steps)]),
        low - reach,
        high + reach,
    )
    out = np.empty_like(aim)
    position, velocity = float(np.clip(aim[0], low, high)), 0.0
    max_dv = limits.max_accel * dt
    for i, goal in enumerate(aim):
        gap = goal - position
        if abs(gap) <= limits.dead_zone:
            wanted = 0.0
        else:
            gap -= np.sign(gap) * limits.dead_zone
            wanted = float(np.clip(gap / limits.response, -limits.max_speed, limits.max_speed))
        wanted = _braking(wanted, position, low, high, limits.max_accel, dt)
        velocity += float(np.clip(wanted - velocity, -max_dv, max_dv))
        position = float(np.clip(position + velocity * dt, low, high))
        out[i] = position
    return out


def follow_both_ways(times, target, low: float, high: float, limits: Limits) -> np.ndarray:
    """The mean of the camera run forwards and backwards in time.

    The clip is analysed whole, so the camera can know what comes: forwards it arrives
    late, backwards early, and their mean is on time. A mean of two paths within the
    speed and acceleration bounds is within them too, and inside ``[low, high]``.
    """
    times = np.asarray(times, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    ahead = follow(times, target, low, high, limits)
    reversed_times = times[-1] + times[0] - times[::-1]
    behind = follow(reversed_times, target[::-1], low, high, limits)[::-1]
    return (ahead + behind) / 2


def _braking(wanted: float, position: float, low: float, high: float, accel: float, dt: float):
    """Limit a speed so the camera can stop before the edge it is heading to."""
    room = max(0.0, (high - position) if wanted > 0 else (position - low))
    # The discrete camera moves v*dt this step, then needs v^2 / 2a to stop: the largest
    # v with v*dt + v^2/2a <= room. (Reserving a whole step at full deceleration instead,
    # sqrt(2a*room) - a*dt, kept it a*dt^2/2 short of the edge: the ball was lost there.)
    limit = accel * (np.sqrt(dt * dt + 2 * room / accel) - dt)
    return float(np.clip(wanted, -limit, limit))


def _filled(values: np.ndarray, default: float) -> np.ndarray:
    """NaNs replaced by the last value seen (the first seen before it; else ``default``)."""
    seen = ~np.isnan(values)
    if not seen.any():
        return np.full_like(values, default)
    index = np.where(seen, np.arange(len(values)), 0)
    np.maximum.accumulate(index, out=index)
    filled = values[index]
    filled[: np.argmax(seen)] = values[np.argmax(seen)]
    return filled


def simplify(
    times, values, tolerance: float, *, max_per_second: float = 1.0, keep_inside=None
) -> list[int]:
    """Indexes of the samples to keep as keyframes.

    Greedy refinement: start from the two ends, and add the sample where the app's
    interpolation of the kept ones is furthest from the path, until it is everywhere
    within ``tolerance`` or the keyframe budget (``max_per_second`` of duration, plus
    the ends) is spent. With a budget too small for the tolerance it keeps the budget
    and the error is as small as the greedy choice makes it.

    ``keep_inside`` is ``(points, reach)``: per sample a point (NaN where there is none,
    such as the ball where it was seen) that the interpolated path must keep within
    ``reach`` of it (per component: the window's half size less a margin). Samples that
    would let a point out are added first, worst first, before any spent on the
    tolerance: a path a little further from the camera's is fine, a ball out of the
    window is not.
    """
    times = np.asarray(times, dtype=np.float64)
    values = _columns(values)
    if len(times) <= 2:
        return list(range(len(times)))
    budget = max(2, int(np.floor((times[-1] - times[0]) * max_per_second)) + 1)
    kept = [0, len(times) - 1]
    while len(kept) < budget:
        paths = _interpolated(times[kept], values[kept], times)
        escape = np.max(np.abs(_shortfall(keep_inside, paths)), axis=1)
        escape[kept] = 0  # a kept sample is the camera's own position: nothing to add
        if escape.max() > 0:
            worst = int(np.argmax(escape))
        else:
            error = np.max(np.abs(paths - values), axis=1)
            worst = int(np.argmax(error))
            if error[worst] <= tolerance:
                break
        kept = sorted({*kept, worst})
    return kept


def fit_inside(times, values, kept, keep_inside, low, high, *, rounds: int = 50) -> np.ndarray:
    """The kept samples' values, moved so the interpolated path keeps the points inside.

    Where the keyframe budget ran out before ``simplify`` could keep every point inside
    (or the camera's own path let one out), the two keyframes around an escape are
    shifted towards it, each by its linear weight there (the app's monotone cubic stays
    close to the chord between two keyframes). Half a step per round, so escapes on both
    sides of a keyframe settle on a compromise instead of pulling it back and forth.
    Values stay within ``[low, high]`` (per component), so the window stays inside the
    frame. Returns an array of (len(kept), components).
    """
    times = np.asarray(times, dtype=np.float64)
    kept = np.asarray(kept)
    fitted = _columns(values)[kept].copy()
    # Per sample: the keyframes before and after it, and how far along between them.
    after = np.searchsorted(kept, np.arange(len(times)), side="right").clip(1, len(kept) - 1)
    before = after - 1
    along = ((times - times[kept[before]]) / (times[kept[after]] - times[kept[before]])).clip(0, 1)
    for _ in range(rounds):
        needed = _shortfall(keep_inside, _interpolated(times[kept], fitted, times))
        if not needed.any():
            break
        shift, weight = np.zeros_like(fitted), np.zeros_like(fitted)
        for keyframe, share in ((before, 1 - along), (after, along)):
            np.add.at(shift, keyframe, needed * share[:, None])
            np.add.at(weight, keyframe, (needed != 0) * share[:, None])
        fitted += 0.5 * np.divide(shift, weight, out=np.zeros_like(shift), where=weight > 0)
        fitted = np.clip(fitted, low, high)
    return fitted


def _interpolated(key_times, key_values, times) -> np.ndarray:
    """(n, components): the app's interpolation of keyframes, at every one of ``times``."""
    return np.column_stack([interpolate(key_times, column, times) for column in key_values.T])


def _shortfall(keep_inside, paths) -> np.ndarray:
    """(n, components): how far the path must move for each point to be within reach of
    it (signed, towards the point; 0 where it is, or where there is no point)."""
    if keep_inside is None:
        return np.zeros_like(paths)
    points, reach = keep_inside
    offset = _columns(points) - paths
    excess = np.abs(offset) - np.asarray(reach, dtype=np.float64)
    return np.nan_to_num(np.sign(offset) * np.maximum(excess, 0.0))


def _columns(values) -> np.ndarray:
    """Values as an (n, components) array: x alone, or x and y together."""
    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values


def _errors(times, values, kept) -> np.ndarray:
    """Per sample, the largest distance of any component from its interpolation."""
    return np.max(np.abs(_interpolated(times[kept], values[kept], times) - values), axis=1)


def interpolate(key_times, key_values, times) -> np.ndarray:
    """The app's interpolation (monotone cubic) of keyframes, sampled at ``times``."""
    track = Track(list(map(float, key_times)), list(map(float, key_values)))
    return np.array([track.at(float(t)) for t in times])


def max_error(times, values, kept) -> float:
    return float(np.max(_errors(np.asarray(times, dtype=np.float64), _columns(values), kept)))
