"""Follow the play on a generated clip with known ground truth: the ball is found, the
proposed window keeps it in, the keyframes are few, valid crops of the clip.

The clip is short and small (6 s at 960x540, panning camera) so the test stays quick;
bench/follow_play.py runs the full evaluation.
"""

import numpy as np
import pytest

from exports.interpolation import CROP_KEYS, KeyframePath
from projects.edits import clean_crop_keyframes
from reframing import propose, synthetic_play, vision

SCENE = synthetic_play.Scene(seconds=6.0, width=960, height=540, pan=True, zoom=True, seed=11)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("follow") / "play.mp4"
    truths = synthetic_play.write(SCENE, path)
    return path, truths


@pytest.fixture(scope="module")
def proposal(clip):
    path, _ = clip
    return propose.propose(path, 9 / 16)


def test_the_window_is_the_largest_of_the_aspect_in_the_frame():
    assert propose.window_for(1920, 1080, 9 / 16) == (607.5, 1080.0)
    assert propose.window_for(1080, 1920, 16 / 9) == (1080.0, 607.5)
    assert propose.window_for(1920, 1080, 16 / 9) == (1920.0, 1080.0)


def test_the_ball_is_found_where_it_can_be_seen(clip):
    path, truths = clip
    observations, size = vision.analyse(path, window=propose.window_for(960, 540, 9 / 16))
    assert size == (960, 540)
    assert len(observations) == pytest.approx(SCENE.seconds * vision.ANALYSIS_FPS, abs=2)
    found = close = 0
    for seen in observations:
        truth = min(truths, key=lambda t: abs(t.time - seen.time))
        if not truth.ball_visible:
            continue
        found += seen.ball is not None
        if seen.ball is not None:
            close += np.hypot(seen.ball[0] - truth.ball[0], seen.ball[1] - truth.ball[1]) < 12
    visible = sum(
        min(truths, key=lambda t: abs(t.time - s.time)).ball_visible for s in observations
    )
    assert found >= 0.8 * visible
    assert close >= 0.95 * found  # what it calls the ball is the ball


def test_the_proposed_window_keeps_the_ball_in(clip, proposal):
    _, truths = clip
    crop = KeyframePath(proposal.keyframes, CROP_KEYS)
    inside = []
    for truth in truths:
        if truth.ball_visible:
            r = crop.at(truth.time)
            x, y = truth.ball
            inside.append(
                r["x"] <= x <= r["x"] + r["width"] and r["y"] <= y <= r["y"] + r["height"]
            )
    assert np.mean(inside) >= 0.9


def test_the_keyframes_are_few_valid_crops_the_editor_accepts(proposal):
    keyframes = proposal.keyframes
    assert 2 <= len(keyframes) <= SCENE.seconds + 1
    times = [k["time"] for k in keyframes]
    assert times == sorted(times) and times[0] == pytest.approx(0.0, abs=0.15)
    for k in keyframes:
        assert k["x"] >= 0 and k["x"] + k["width"] <= SCENE.width + 0.01
        assert k["y"] >= 0 and k["y"] + k["height"] <= SCENE.height + 0.01
        assert k["width"] / k["height"] == pytest.approx(9 / 16, abs=0.01)
    # The same check the API runs on a user's keyframes.
    cleaned = clean_crop_keyframes(
        keyframes,
        frame_width=SCENE.width,
        frame_height=SCENE.height,
        duration=SCENE.seconds,
        aspect=9 / 16,
    )
    assert len(cleaned) == len(keyframes)


def test_it_is_smoother_than_following_each_frame(clip, proposal):
    path, truths = clip
    times = np.array([t.time for t in truths])
    crop = KeyframePath(proposal.keyframes, CROP_KEYS)
    ours = np.array([crop.at(t)["x"] for t in times])
    observations, _ = vision.analyse(path, window=proposal.window)
    raw = np.interp(
        times,
        [o.time for o in observations if o.action],
        [o.action[0] for o in observations if o.action],
    )
    jerk = lambda x: np.sqrt(np.mean(np.diff(x, n=3) ** 2))  # noqa: E731
    assert jerk(ours) < jerk(raw) / 10


def test_progress_rises_to_one_and_cancel_stops_it(clip):
    path, _ = clip
    seen = []
    vision.analyse(path, window=(300, 540), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0, abs=0.05)
    calls = []
    with pytest.raises(vision.AnalysisCancelled):
        vision.analyse(
            path, window=(300, 540), should_cancel=lambda: calls.append(1) or len(calls) > 5
        )


def test_a_range_of_the_clip_is_analysed_alone(clip):
    path, _ = clip
    result = propose.propose(path, 9 / 16, start=2.0, end=4.0)
    times = [k["time"] for k in result.keyframes]
    assert times[0] >= 1.9 and times[-1] <= 4.0 + 1e-6


def test_the_aim_waits_where_the_ball_comes_back_before_it_does():
    # Seen on the left until 1 s, out of the picture, back on the right at 4 s; the
    # players' motion meanwhile is in the middle. The clip is analysed whole, so for the
    # last BALL_AHEAD seconds of the gap the camera aims where the ball will come back
    # (a window a third of the frame wide cannot cross it in time otherwise).
    def seen(t):
        ball = (100.0, 300.0) if t <= 1.0 else (900.0, 300.0) if t >= 4.0 else None
        return vision.Observation(time=t, ball=ball, action=(480.0, 300.0), camera_shift=0.0)

    times = np.round(np.arange(0, 5, 0.1), 3)
    aims = dict(zip(times, propose.targets([seen(t) for t in times]), strict=True))
    assert tuple(aims[1.5]) == (100.0, 300.0)  # just gone: where it was last seen
    assert tuple(aims[2.5]) == (480.0, 300.0)  # long gone: the players
    assert tuple(aims[3.0]) == (900.0, 300.0)  # soon back: where it comes back
    assert propose.BALL_HOLD + propose.BALL_AHEAD < 3.0  # the gap above has all three


def test_a_fast_pass_into_the_corner_stays_inside_the_simplified_window():
    # Held-out bench scene "static camera, seed 55": the ball crosses to the right edge at
    # up to 1500 px/s and leaves. The camera's path keeps it in, but one keyframe a second
    # with a tolerance of 6 % of the window cut the corner: the ball was outside for the
    # last 0.2 s before it left. The simplified path must keep every ball seen inside.
    size, window = (1280, 720), propose.window_for(1280, 720, 9 / 16)

    def ball_at(t):
        if t <= 0.75:
            return 640.0 + 750.0 * t
        return 640.0 + 750.0 * 0.75 + 1500.0 * (t - 0.75)

    observations = [
        vision.Observation(
            time=t,
            ball=(ball_at(t), 630.0) if ball_at(t) < 1280 else None,
            action=(560.0, 400.0),
            camera_shift=0.0,
        )
        for t in np.round(np.arange(0, 6, 0.1), 3)
    ]
    result = propose.from_observations(observations, size, window)
    path = KeyframePath(result.keyframes, CROP_KEYS)
    for seen in observations:
        if seen.ball is not None:
            crop = path.at(seen.time)
            assert crop["x"] <= seen.ball[0] <= crop["x"] + crop["width"], seen.time
