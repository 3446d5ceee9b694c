"""The virtual camera and the keyframe simplification: bounds that hold on any input."""

import numpy as np
import pytest

from reframing import camera_path
from reframing.camera_path import Limits

FPS = 10.0
LIMITS = Limits(max_speed=900.0, max_accel=4000.0, lead=0.2, dead_zone=10.0, response=0.15)
LOW, HIGH = 200.0, 1080.0


def times(seconds=20.0):
    return np.arange(0, seconds, 1 / FPS)


def targets(kind, t, rng):
    if kind == "noise":  # a jittery detector
        return 640 + rng.normal(0, 300, len(t))
    if kind == "jumps":  # the ball found at the far side, again and again
        return np.where((t // 2) % 2 == 0, -500.0, 2500.0)
    if kind == "sine":
        return 640 + 600 * np.sin(t * 3)
    if kind == "gaps":  # nothing seen for whole seconds
        values = 640 + 500 * np.sin(t)
        values[(t % 5) > 3] = np.nan
        return values
    raise AssertionError(kind)


def speeds(path):
    return np.diff(path) * FPS


@pytest.mark.parametrize("follow", [camera_path.follow, camera_path.follow_both_ways])
@pytest.mark.parametrize("kind", ["noise", "jumps", "sine", "gaps"])
def test_speed_acceleration_and_frame_bounds_hold(follow, kind):
    t = times()
    path = follow(t, targets(kind, t, np.random.default_rng(7)), LOW, HIGH, LIMITS)
    assert len(path) == len(t)
    assert path.min() >= LOW - 1e-9 and path.max() <= HIGH + 1e-9
    velocity = speeds(path)
    assert np.abs(velocity).max() <= LIMITS.max_speed * (1 + 1e-6)
    acceleration = np.diff(velocity) * FPS
    assert np.abs(acceleration).max() <= LIMITS.max_accel * (1 + 1e-6)


def test_it_reaches_a_still_target_and_stays():
    t = times(6)
    path = camera_path.follow(t, np.full(len(t), 900.0), LOW, HIGH, LIMITS)
    assert path[0] == 900.0  # it starts where the action is
    moving = camera_path.follow(t, np.where(t < 1, 400.0, 900.0), LOW, HIGH, LIMITS)
    assert abs(moving[-1] - 900.0) <= LIMITS.dead_zone + 1e-6
    assert np.abs(np.diff(moving[-10:])).max() < 1e-6  # settled: no creeping


def test_small_jitter_inside_the_dead_zone_never_moves_the_picture():
    t = times(5)
    # Within +-4 px of 640, so never further than 8 px from where the camera starts.
    jitter = 640 + np.random.default_rng(1).uniform(-4, 4, len(t))
    path = camera_path.follow(t, jitter, LOW, HIGH, LIMITS)
    assert np.ptp(path) == 0


def test_a_target_beyond_the_edge_stops_the_window_at_the_edge():
    t = times(4)
    path = camera_path.follow(t, np.full(len(t), 5000.0), LOW, HIGH, LIMITS)
    assert path.max() == pytest.approx(HIGH, abs=1.0)
    assert path.max() <= HIGH


def test_the_two_way_camera_is_not_late():
    t = times(10)
    step = np.where(t < 5, 300.0, 1000.0)
    one_way = camera_path.follow(t, step, LOW, HIGH, Limits(900, 4000, lead=0.0, response=0.15))
    both = camera_path.follow_both_ways(
        t, step, LOW, HIGH, Limits(900, 4000, lead=0.0, response=0.15)
    )
    # Half way there: the one-way camera after the cut, the two-way one at it.
    half = 650.0
    assert t[np.argmax(one_way > half)] > 5.0
    assert abs(t[np.argmax(both > half)] - 5.0) <= 0.15


def test_nothing_seen_at_all_holds_the_centre():
    t = times(3)
    path = camera_path.follow(t, np.full(len(t), np.nan), LOW, HIGH, LIMITS)
    assert np.allclose(path, (LOW + HIGH) / 2)


@pytest.mark.parametrize("tolerance", [10.0, 20.0, 60.0])
def test_simplification_stays_within_its_tolerance_as_the_app_interpolates(tolerance):
    t = times(30)
    smooth = camera_path.follow_both_ways(
        t, targets("sine", t, np.random.default_rng(2)), LOW, HIGH, LIMITS
    )
    kept = camera_path.simplify(t, smooth, tolerance, max_per_second=10)
    assert kept[0] == 0 and kept[-1] == len(t) - 1 and kept == sorted(set(kept))
    assert camera_path.max_error(t, smooth, kept) <= tolerance
    assert len(kept) < len(t) / 2  # it did simplify


def test_simplification_keeps_at_most_one_keyframe_a_second():
    t = times(30)
    rough = targets("noise", t, np.random.default_rng(3))
    kept = camera_path.simplify(t, rough, 1.0, max_per_second=1.0)
    assert len(kept) <= 30 + 1


def test_simplification_of_two_axes_bounds_both():
    t = times(20)
    xy = np.column_stack([640 + 300 * np.sin(t), 360 + 150 * np.cos(t * 1.7)])
    kept = camera_path.simplify(t, xy, 8.0, max_per_second=5)
    assert camera_path.max_error(t, xy, kept) <= 8.0


def test_a_straight_pan_needs_only_its_ends():
    t = times(10)
    line = np.linspace(300, 900, len(t))
    assert camera_path.simplify(t, line, 1.0) == [0, len(t) - 1]


def test_a_target_at_the_edge_of_the_picture_brings_the_window_right_up_to_it():
    # The ball runs to the frame's left edge (its centre beyond where the window's centre
    # can go): the window must reach the edge, not stop a dead zone or a braking step short
    # of it, or a ball at the edge of the picture is outside it.
    t = times(5)
    target = np.where(t < 1, 640.0, LOW - 150.0)
    path = camera_path.follow(t, target, LOW, HIGH, LIMITS)
    assert path[-1] == pytest.approx(LOW, abs=0.5)
    both = camera_path.follow_both_ways(t, target, LOW, HIGH, LIMITS)
    assert both[-1] == pytest.approx(LOW, abs=0.5)


def test_simplification_keeps_the_points_inside_before_spending_on_its_tolerance():
    # A camera that swings out and back every 4 s, a ball on its centre. With a
    # tolerance this loose the ends alone would do, and the ball would be far outside a
    # window of half width 60 in between.
    t = times(10)
    path = 640 + 300 * np.sin(t * 2 * np.pi / 4.0)
    inside = (path, 60.0)
    loose = camera_path.simplify(t, path, 400.0)
    assert np.max(np.abs(camera_path.interpolate(t[loose], path[loose], t) - path)) > 60
    kept = camera_path.simplify(t, path, 400.0, keep_inside=inside)
    fitted = camera_path.interpolate(t[kept], path[kept], t)
    assert np.max(np.abs(fitted - path)) <= 60
    assert len(kept) <= 10 + 1  # still at most one a second


def test_fitting_moves_keyframes_towards_a_point_they_let_out_and_stays_in_the_frame():
    t = times(5)
    path = np.full(len(t), 640.0)
    ball = np.full(len(t), np.nan)
    ball[25] = 900.0  # seen once, far right of a window of half width 100 at 640
    kept = [0, len(t) - 1]  # a budget that has no keyframe to spend there
    values = camera_path.fit_inside(t, path, kept, (ball, 100.0), LOW, HIGH)[:, 0]
    assert camera_path.interpolate(t[kept], values, t)[25] >= 900.0 - 100.0 - 1.0
    # A point beyond where the window can go: the keyframes stop at the frame's edge.
    ball[25] = HIGH + 500.0
    values = camera_path.fit_inside(t, path, kept, (ball, 100.0), LOW, HIGH)[:, 0]
    assert np.all((values >= LOW) & (values <= HIGH))
    assert np.allclose(values, HIGH)
