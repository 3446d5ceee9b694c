"""Where the play is, per analysed frame, from classical vision (OpenCV and numpy only).

The clip is decoded once and analysed at a reduced size (``ANALYSIS_WIDTH``) and rate
(``ANALYSIS_FPS``); memory does not grow with its length (one frame and one previous
frame are kept). For each analysed frame:

1. **Camera motion**: corners of the previous frame tracked into this one (pyramidal
   Lucas-Kanade), and a similarity transform (pan, zoom, a little rotation) fitted with
   RANSAC, so the players and the ball, which move against the pitch, are outliers.
2. **Motion**: the previous frame warped by that transform and subtracted, so a panning
   camera does not make the whole pitch "move". What moves is the players and the ball.
3. **The ball**: small, round, bright blobs (a white top-hat finds spots smaller than a
   player), that also move against the pitch, chosen by closeness to where the ball's
   track predicts it (constant velocity, carried through the camera's motion).
4. **The players**: the window-wide stretch of the frame holding the most motion; a
   fallback when the ball cannot be found.

With an operator's detector model (:mod:`reframing.detectors`), its ball and person
boxes replace the cues of steps 3 and 4 (the ball's track stays the same).

``analyse`` returns an ``Observation`` per analysed frame in source pixels; the path is
made from them by :mod:`reframing.propose`.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import av
import cv2
import numpy as np

from exports.render import even_size

from .detectors import BALL, PERSON

ANALYSIS_WIDTH = 640  # px: the ball stays a few pixels wide at this size
ANALYSIS_FPS = 10.0
BALL_MISSES_ALLOWED = 5  # analysed frames the ball's track survives unseen


@dataclass(frozen=True)
class Observation:
    time: float  # s, the clip's own time
    ball: tuple[float, float] | None  # source px, None when not found
    action: tuple[float, float] | None  # source px, centre of the most motion
    camera_shift: float  # px/frame of the camera's pan (source px), for diagnostics


class AnalysisCancelled(Exception):
    pass


def analyse(
    path,
    *,
    window: tuple[float, float],
    start: float = 0.0,
    end: float | None = None,
    progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    detector=None,
) -> tuple[list[Observation], tuple[int, int]]:
    """Observations of the clip at ``path`` between ``start`` and ``end`` (seconds).

    ``window`` is the crop window's size in source pixels: the motion fallback looks for
    the stretch of that size with the most motion. Returns the observations and the
    source's size. ``progress`` gets a fraction 0-1; ``should_cancel`` is asked often.
    """
    with contextlib.closing(av.open(str(path))) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        duration = _duration(container, stream)
        end = duration if end is None else min(end, duration)
        tracker = _Tracker(width, height, window, detector)
        if start > 0:
            container.seek(round(start / stream.time_base), stream=stream, backward=True)
        step = 1.0 / ANALYSIS_FPS
        next_time = start
        observations = []
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else next_time
            if t < next_time - 1e-6:
                continue
            if t > end + 1e-6:
                break
            next_time = t + step
            observations.append(tracker.observe(t, frame))
            if should_cancel and should_cancel():
                raise AnalysisCancelled()
            if progress and end > start:
                progress(min(1.0, (t - start) / (end - start)))
    return observations, (width, height)


def _duration(container, stream) -> float:
    if stream.duration:
        return float(stream.duration * stream.time_base)
    return float(container.duration or 0) / 1_000_000


class _Tracker:
    """The state carried from one analysed frame to the next."""

    def __init__(self, width: int, height: int, window: tuple[float, float], detector=None):
        self.detector = detector
        self.scale = ANALYSIS_WIDTH / width if width > ANALYSIS_WIDTH else 1.0
        self.small_w = even_size(width * self.scale)
        self.small_h = even_size(height * self.scale)
        self.window = (window[0] * self.scale, window[1] * self.scale)
        size = self.small_h
        # Ball sizes at this scale: from a far ball (~0.5% of the height) to a near one.
        self.ball_area = (max(2.0, (size * 0.004) ** 2), (size * 0.035) ** 2 * 3.2)
        self.tophat_kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (_odd(size * 0.04), _odd(size * 0.04))
        )
        self.previous = None
        self.ball = None  # (x, y) small px
        self.velocity = np.zeros(2)
        self.misses = BALL_MISSES_ALLOWED + 1

    def observe(self, t: float, frame) -> Observation:
        size = {"width": self.small_w, "height": self.small_h}
        rgb = None
        if self.detector is not None:
            rgb = frame.reformat(**size, format="rgb24").to_ndarray()
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        else:
            gray = frame.reformat(**size, format="gray").to_ndarray()
        if self.previous is None:
            self.previous = gray
            return Observation(t, None, None, 0.0)
        matrix = _camera_motion(self.previous, gray)
        warped = cv2.warpAffine(self.previous, matrix, (self.small_w, self.small_h),
                                borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        moving = _motion_mask(warped, gray)
        if self.detector is not None:
            found = self.detector.detect(rgb)
            candidates = [(*d.centre, 255 * d.score) for d in found if d.label == BALL]
            people = [d for d in found if d.label == PERSON]
            action = _densest_window(_box_mask(people, gray.shape), self.window) if people else None
        else:
            candidates = self._ball_candidates(gray, moving)
            action = _densest_window(moving, self.window)
        ball = self._find_ball(candidates, matrix)
        self.previous = gray
        return Observation(
            t,
            self._to_source(ball),
            self._to_source(action),
            float(matrix[0, 2] / self.scale),
        )

    def _to_source(self, point):
        if point is None:
            return None
        return (float(point[0] / self.scale), float(point[1] / self.scale))

    def _find_ball(self, candidates, matrix):
        predicted = None
        if self.ball is not None and self.misses <= BALL_MISSES_ALLOWED:
            ahead = np.asarray(self.ball) + self.velocity * (self.misses + 1)
            predicted = matrix[:, :2] @ ahead + matrix[:, 2]
        choice = _choose(candidates, predicted, gate=self.small_h * 0.18)
        if choice is None:
            self.misses += 1
            return None
        if self.ball is not None and self.misses <= BALL_MISSES_ALLOWED:
            moved = (choice - (matrix[:, :2] @ np.asarray(self.ball) + matrix[:, 2])) / (
                self.misses + 1
            )
            self.velocity = 0.6 * moved + 0.4 * self.velocity
        else:
            self.velocity = np.zeros(2)
        self.ball, self.misses = choice, 0
        return choice

    def _ball_candidates(self, gray, moving):
        """``[(x, y, score)]``: small bright round spots that move against the pitch."""
        spots = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, self.tophat_kernel)
        _, bright = cv2.threshold(spots, 40, 255, cv2.THRESH_BINARY)
        count, _labels, stats, centroids = cv2.connectedComponentsWithStats(bright, connectivity=8)
        low, high = self.ball_area
        near_motion = cv2.dilate(moving, np.ones((5, 5), np.uint8))
        found = []
        for i in range(1, count):
            x, y, w, h, area = stats[i]
            if not low <= area <= high:
                continue
            roundness = area / float(w * h)  # a disc fills ~0.785 of its box
            if max(w, h) > 2.2 * min(w, h) or roundness < 0.45:
                continue  # a piece of a line
            cx, cy = centroids[i]
            if not near_motion[int(cy), int(cx)]:
                continue  # a spot painted on the pitch
            contrast = float(spots[y : y + h, x : x + w].max())
            found.append((float(cx), float(cy), contrast * roundness))
        return found


def _box_mask(detections, shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for d in detections:
        x1, y1, x2, y2 = (round(v) for v in d.box)
        mask[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = 255
    return mask


def _choose(candidates, predicted, gate):
    if not candidates:
        return None
    if predicted is None:
        best = max(candidates, key=lambda c: c[2])
        return np.array(best[:2])
    distances = [np.hypot(c[0] - predicted[0], c[1] - predicted[1]) for c in candidates]
    nearest = int(np.argmin(distances))
    if distances[nearest] <= gate:
        return np.array(candidates[nearest][:2])
    # Far from the prediction: only a clearly ball-like spot restarts the track.
    best = max(candidates, key=lambda c: c[2])
    return np.array(best[:2]) if best[2] > 120 else None


def _camera_motion(previous, current) -> np.ndarray:
    """A 2x3 similarity transform taking ``previous`` onto ``current`` (identity if the
    picture has too little texture to tell)."""
    corners = cv2.goodFeaturesToTrack(previous, maxCorners=300, qualityLevel=0.01, minDistance=8)
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    if corners is None or len(corners) < 12:
        return identity
    moved, status, _err = cv2.calcOpticalFlowPyrLK(previous, current, corners, None,
                                                   winSize=(21, 21), maxLevel=3)  # fmt: skip
    good = status.ravel() == 1
    if good.sum() < 12:
        return identity
    matrix, _inliers = cv2.estimateAffinePartial2D(
        corners[good], moved[good], method=cv2.RANSAC, ransacReprojThreshold=2.0
    )
    return identity if matrix is None else matrix


def _motion_mask(warped_previous, current) -> np.ndarray:
    difference = cv2.absdiff(current, warped_previous)
    difference = cv2.GaussianBlur(difference, (3, 3), 0)
    _, mask = cv2.threshold(difference, 18, 255, cv2.THRESH_BINARY)
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))


def _densest_window(mask, window):
    """Centre of the window-sized box holding the most moving pixels (None if still)."""
    total = float(mask.sum())
    if total <= 0:
        return None
    height, width = mask.shape
    columns = mask.sum(axis=0, dtype=np.float64)
    rows = mask.sum(axis=1, dtype=np.float64)
    return (_best_span(columns, window[0], width), _best_span(rows, window[1], height))


def _best_span(profile, span, length):
    span = round(min(span, length))
    if span >= length:
        return length / 2
    sums = np.convolve(profile, np.ones(span), mode="valid")
    best = np.flatnonzero(sums >= sums.max() - 1e-9)
    start = best[len(best) // 2]
    return start + span / 2


def _odd(value: float) -> int:
    number = max(3, round(value))
    return number if number % 2 else number + 1
