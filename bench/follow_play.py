"""Evaluate "follow the play" on generated footage with known ground truth.

    .venv/bin/python bench/follow_play.py              # the evaluation table
    .venv/bin/python bench/follow_play.py --speed      # and a 60 s 1080p clip's time, memory
    .venv/bin/python bench/follow_play.py --held-out   # and scenes of seeds never tuned on

Each scene (reframing/synthetic_play.py) is encoded to H.264, analysed from the file
like a user's clip, and framed to 9:16. Per scene and method:

- **ball in window**: the fraction of frames where the ball can be seen in which it is
  inside the crop window (the keyframes as the app interpolates them);
- **action in window**: the same for the action centre, over the frames where the ball
  is hidden or outside the picture;
- **jerk**: RMS of the window centre's third derivative, in source widths per s^3
  (sampled at the video's frame rate): how shaky the picture is;
- **keyframes**: how many the user gets to edit.

Methods: **ours** (reframing.propose), **centre** (a fixed centre crop), **per-frame**
(the window centred on each analysed frame's motion centroid, no smoothing; linear
between analysed frames).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

os_environ = __import__("os").environ
os_environ.setdefault("DJANGO_SETTINGS_MODULE", "reeleditor.settings")
django.setup()

from exports.interpolation import CROP_KEYS, KeyframePath  # noqa: E402
from reframing import propose, synthetic_play, vision  # noqa: E402

ASPECT = 9 / 16
SCENES = [
    synthetic_play.Scene(name="static camera", pan=False, seed=3),
    synthetic_play.Scene(name="panning camera", pan=True, seed=4),
    synthetic_play.Scene(name="pan + zoom", pan=True, zoom=True, seed=5),
    synthetic_play.Scene(name="occlusions", pan=True, occlusions=True, seed=6),
    synthetic_play.Scene(name="ball leaves frame", pan=True, loses_ball=True, seed=7),
    synthetic_play.Scene(
        name="everything", pan=True, zoom=True, occlusions=True, loses_ball=True, seed=8
    ),
]

# Seeds no parameter was ever tuned on: the hardest scene kinds (a fixed camera, where the
# ball is out of the picture most of the time, and everything at once). The misses on the
# first four were looked at to find what simplification lost (issue 13, MARGIN);
# the last four were run only once that was fixed.
HELD_OUT_SEEDS = (13, 21, 34, 55, 89, 144, 233, 377)


def held_out_scenes():
    for seed in HELD_OUT_SEEDS:
        yield synthetic_play.Scene(name=f"static camera, seed {seed}", pan=False, seed=seed)
    for seed in HELD_OUT_SEEDS:
        yield synthetic_play.Scene(
            name=f"everything, seed {seed}",
            pan=True, zoom=True, occlusions=True, loses_ball=True, seed=seed,
        )  # fmt: skip


def window_centres(keyframes, times):
    path = KeyframePath(keyframes, CROP_KEYS)
    return np.array(
        [(r["x"] + r["width"] / 2, r["y"] + r["height"] / 2) for r in map(path.at, times)]
    )


def evaluate(centres, truths, window, width):
    """(ball in window, action in window, jerk) for window centres per frame."""
    half = np.array(window) / 2
    ball = np.array([t.ball for t in truths])
    action = np.array([t.action for t in truths])
    visible = np.array([t.ball_visible for t in truths])
    inside = lambda points: np.all(np.abs(points - centres) <= half, axis=1)  # noqa: E731
    ball_in = inside(ball)[visible].mean() if visible.any() else float("nan")
    action_in = inside(action)[~visible].mean() if (~visible).any() else float("nan")
    fps = 1 / (truths[1].time - truths[0].time)
    jerk = np.diff(centres[:, 0], n=3) * fps**3 / width
    return float(ball_in), float(action_in), float(np.sqrt(np.mean(jerk**2)))


def per_frame_baseline(observations, times, size, window):
    """The window on each analysed frame's motion centroid, linear in between."""
    width, height = size
    obs_t = np.array([o.time for o in observations])
    xs = np.array([o.action[0] if o.action else np.nan for o in observations])
    ys = np.array([o.action[1] if o.action else np.nan for o in observations])
    known = ~np.isnan(xs)
    x = np.interp(times, obs_t[known], xs[known])
    y = np.interp(times, obs_t[known], ys[known])
    x = np.clip(x, window[0] / 2, width - window[0] / 2)
    y = np.clip(y, window[1] / 2, height - window[1] / 2)
    return np.column_stack([x, y])


def run_scene(scene, folder):
    path = folder / f"scene-{scene.seed}.mp4"
    truths = synthetic_play.write(scene, path)
    size = (scene.width, scene.height)
    window = propose.window_for(*size, ASPECT)
    started = time.perf_counter()
    observations, _ = vision.analyse(path, window=window)
    analysis_s = time.perf_counter() - started
    proposal = propose.from_observations(observations, size, window)
    times = np.array([t.time for t in truths])
    centre = np.tile([scene.width / 2, scene.height / 2], (len(times), 1))
    rows = {
        "ours": (*evaluate(window_centres(proposal.keyframes, times), truths, window, scene.width),
                 len(proposal.keyframes)),
        "centre": (*evaluate(centre, truths, window, scene.width), 1),
        "per-frame": (*evaluate(per_frame_baseline(observations, times, size, window), truths,
                                window, scene.width), len(observations)),
    }  # fmt: skip
    return rows, analysis_s, proposal.ball_seen


def speed(folder, seconds):
    """Analysis time and peak memory of a 1080p clip of ``seconds``, in a fresh process
    (VmHWM: unlike ru_maxrss it does not carry the parent's peak across exec)."""
    path = folder / f"long-1080p-{seconds:.0f}.mp4"
    scene = synthetic_play.Scene(seconds=seconds, width=1920, height=1080, zoom=True, seed=9)
    synthetic_play.write(scene, path, preset="ultrafast")
    code = (
        f"import re, time, sys; sys.path.insert(0, {str(ROOT)!r});"
        "from reframing import propose;"
        f"t = time.perf_counter(); p = propose.propose({str(path)!r}, 9/16);"
        "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1];"
        "print(time.perf_counter() - t, len(p.keyframes), int(peak) // 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed, keyframes, rss_mb = out.stdout.split()
    return float(elapsed), int(keyframes), int(rss_mb)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true", help="also time a 60 s 1080p clip")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the speed clip")
    parser.add_argument("--held-out", action="store_true", help="also the held-out seeds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(
            "| scene | method | ball in window | action in window (ball hidden) "
            "| jerk (widths/s^3) | keyframes |"
        )
        print("|---|---|---|---|---|---|")
        for scene in SCENES:
            rows, analysis_s, seen = run_scene(scene, folder)
            for method, (ball_in, action_in, jerk, count) in rows.items():
                action = "-" if np.isnan(action_in) else f"{action_in:.1%}"
                print(
                    f"| {scene.name} | {method} | {ball_in:.1%} | {action} | {jerk:.2f} | {count} |"
                )
            print(
                f"<!-- {scene.name}: analysis {analysis_s:.2f} s for {scene.seconds:.0f} s at "
                f"{scene.width}x{scene.height}, ball found in {seen:.0%} of analysed frames -->"
            )
        if args.held_out:
            held_out(folder)
        if args.speed:
            print("\n| 1080p clip | analysis | faster than real time | keyframes | peak RSS |")
            print("|---|---|---|---|---|")
            for seconds in (args.seconds / 4, args.seconds):
                elapsed, keyframes, rss = speed(folder, seconds)
                print(
                    f"| {seconds:.0f} s | {elapsed:.1f} s | {seconds / elapsed:.1f}x "
                    f"| {keyframes} | {rss} MB |"
                )


def held_out(folder):
    print("\n| held-out scene | ball in window: ours / per-frame | jerk: ours / per-frame |")
    print("|---|---|---|")
    for scene in held_out_scenes():
        rows, _, _ = run_scene(scene, folder)
        ours, frame = rows["ours"], rows["per-frame"]
        print(f"| {scene.name} | {ours[0]:.1%} / {frame[0]:.1%} | {ours[2]:.1f} / {frame[2]:.0f} |")


if __name__ == "__main__":
    main()
