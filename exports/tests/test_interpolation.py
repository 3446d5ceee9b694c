"""Crop and ellipse interpolation: Python and the browser's JS against one table.

``exports/interpolation_vectors.json`` holds the cases (inputs, query times, expected
values; some worked out by hand, the rest computed once). Python must match it, the JS
module must match it (run under node), and property tests check what the table cannot
enumerate: values never leave their neighbouring keyframes' range, and never jump.
"""

import json
import random
from pathlib import Path

import pytest

from exports.interpolation import (
    CROP_KEYS,
    CropPath,
    KeyframePath,
    Track,
    clamp_rect,
    default_crop,
)
from exports.tests.helpers import run_node_check

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "exports" / "interpolation_vectors.json").read_text())
TOLERANCE = VECTORS["tolerance"]
JS_MODULE = ROOT / "static" / "js" / "interpolation.js"


def close(got, expected):
    return abs(got - expected) <= TOLERANCE


def assert_rect(got, expected, context):
    for key in CROP_KEYS:
        assert close(got[key], expected[key]), (context, key, got, expected)


@pytest.mark.parametrize("case", VECTORS["tracks"], ids=lambda c: c["name"])
def test_track_matches_vectors(case):
    track = Track(case["times"], case["values"])
    for t, expected in case["expect"]:
        assert close(track.at(t), expected), (t, track.at(t), expected)


@pytest.mark.parametrize("case", VECTORS["paths"], ids=lambda c: c["name"])
def test_keyframe_path_matches_vectors(case):
    path = KeyframePath(case["keyframes"], case["keys"])
    for t, expected in case["expect"]:
        got = path.at(t)
        assert set(got) == set(case["keys"])
        for key in case["keys"]:
            assert close(got[key], expected[key]), (t, key, got, expected)


@pytest.mark.parametrize("case", VECTORS["crops"], ids=lambda c: c["name"])
def test_crop_path_matches_vectors(case):
    path = CropPath(case["keyframes"], *case["frame"], aspect=case["aspect"])
    for t, expected in case["expect"]:
        assert_rect(path.at(t), expected, t)


@pytest.mark.parametrize("case", VECTORS["default_crops"], ids=lambda c: c["name"])
def test_default_crop_matches_vectors(case):
    assert_rect(default_crop(*case["frame"], case["aspect"]), case["expect"], case["name"])


@pytest.mark.parametrize("case", VECTORS["clamps"], ids=lambda c: c["name"])
def test_clamp_matches_vectors(case):
    assert_rect(clamp_rect(case["rect"], *case["frame"]), case["expect"], case["name"])


def test_the_table_covers_what_it_promises():
    names = " ".join(c["name"] for c in VECTORS["tracks"] + VECTORS["crops"])
    for topic in ("one keyframe", "two keyframes", "extremum", "uneven", "hold", "clamped"):
        assert topic in names
    assert any(not c["keyframes"] for c in VECTORS["crops"])
    assert len({c["aspect"] for c in VECTORS["default_crops"]}) >= 4
    assert any("hand_checked" in c for c in VECTORS["tracks"] + VECTORS["crops"])


def test_a_default_crop_is_the_largest_centred_window():
    crop = default_crop(1920, 1080, 9 / 16)
    assert crop == {"x": 656.25, "y": 0.0, "width": 607.5, "height": 1080.0}
    assert CropPath([], 1920, 1080, aspect=9 / 16).at(12.0) == crop


def test_a_path_needs_a_keyframe():
    with pytest.raises(ValueError):
        KeyframePath([], CROP_KEYS)


# --- properties ---------------------------------------------------------------------


def random_keyframes(rng, count):
    times = sorted(rng.sample(range(0, 4000), count))
    return [t / 100 for t in times], [rng.uniform(-1000, 3000) for _ in times]


@pytest.mark.parametrize("seed", range(40))
def test_it_never_leaves_the_neighbouring_keyframes_range(seed):
    rng = random.Random(seed)
    times, values = random_keyframes(rng, rng.randint(2, 12))
    if seed % 4 == 0:
        values.sort()  # monotone data must give a monotone curve
    track = Track(times, values)
    for i in range(len(times) - 1):
        lo, hi = sorted((values[i], values[i + 1]))
        previous = None
        for k in range(101):
            t = times[i] + (times[i + 1] - times[i]) * k / 100
            v = track.at(t)
            assert lo - 1e-9 <= v <= hi + 1e-9, (t, v, lo, hi)
            if seed % 4 == 0 and previous is not None:
                assert v >= previous - 1e-9
            previous = v
    assert track.at(times[0] - 5) == values[0]
    assert track.at(times[-1] + 5) == values[-1]


@pytest.mark.parametrize("seed", range(20))
def test_it_never_jumps(seed):
    rng = random.Random(1000 + seed)
    times, values = random_keyframes(rng, rng.randint(1, 10))
    track = Track(times, values)
    span = max(values) - min(values) or 1.0
    dt = 1e-7
    # Around every keyframe (both sides) and at random times in between.
    probes = [t + d for t in times for d in (-dt, 0.0)]
    probes += [rng.uniform(times[0] - 1, times[-1] + 1) for _ in range(200)]
    for t in probes:
        # The slope of a monotone cubic is bounded by 3x the steepest secant.
        assert abs(track.at(t + dt) - track.at(t)) <= 1e-3 * span, t
    for t, v in zip(times, values, strict=True):
        assert abs(track.at(t) - v) <= 1e-9


@pytest.mark.parametrize("seed", range(10))
def test_a_crop_path_passes_through_its_keyframes_and_stays_in_the_frame(seed):
    rng = random.Random(2000 + seed)
    keyframes, time = [], 0.0
    for _ in range(rng.randint(1, 6)):
        time += rng.uniform(0.3, 2.0)
        width = rng.uniform(200, 700)
        height = width * 16 / 9
        keyframes.append(
            {
                "time": time,
                "x": rng.uniform(0, 1920 - width),
                "y": rng.uniform(0, 1080 - min(height, 1080)),
                "width": width,
                "height": min(height, 1080),
            }
        )
    path = CropPath(keyframes, 1920, 1080, aspect=9 / 16)
    for k in keyframes:
        assert_rect(path.at(k["time"]), k, k["time"])
    for _ in range(200):
        rect = path.at(rng.uniform(-1, keyframes[-1]["time"] + 1))
        assert rect["x"] >= 0 and rect["y"] >= 0
        assert rect["x"] + rect["width"] <= 1920 + 1e-9
        assert rect["y"] + rect["height"] <= 1080 + 1e-9


# --- the browser's copy -------------------------------------------------------------

NODE_CHECK = r"""
import { readFileSync } from "node:fs";
const { Track, KeyframePath, CropPath, defaultCrop, clampRect, CROP_KEYS } =
  await import(process.argv[2]);

const table = JSON.parse(readFileSync(process.argv[3], "utf8"));
const tol = table.tolerance;
const failures = [];
let checks = 0;
function check(where, got, expected) {
  checks++;
  if (!(Math.abs(got - expected) <= tol)) failures.push({ where, got, expected });
}
function checkObject(where, got, expected, keys) {
  for (const key of keys) check(`${where} ${key}`, got[key], expected[key]);
}
for (const c of table.tracks) {
  const track = new Track(c.times, c.values);
  for (const [t, v] of c.expect) check(`${c.name} @${t}`, track.at(t), v);
}
for (const c of table.paths) {
  const path = new KeyframePath(c.keyframes, c.keys);
  for (const [t, v] of c.expect) checkObject(`${c.name} @${t}`, path.at(t), v, c.keys);
}
for (const c of table.crops) {
  const path = new CropPath(c.keyframes, c.frame[0], c.frame[1], c.aspect);
  for (const [t, v] of c.expect) checkObject(`${c.name} @${t}`, path.at(t), v, CROP_KEYS);
}
for (const c of table.default_crops) {
  checkObject(c.name, defaultCrop(c.frame[0], c.frame[1], c.aspect), c.expect, CROP_KEYS);
}
for (const c of table.clamps) {
  checkObject(c.name, clampRect(c.rect, c.frame[0], c.frame[1]), c.expect, CROP_KEYS);
}
console.log(JSON.stringify({ checks, failures }));
"""


def count_checks():
    total = sum(len(c["expect"]) for c in VECTORS["tracks"])
    total += sum(len(c["expect"]) * len(c["keys"]) for c in VECTORS["paths"])
    total += sum(len(c["expect"]) * 4 for c in VECTORS["crops"])
    return total + 4 * (len(VECTORS["default_crops"]) + len(VECTORS["clamps"]))


def test_the_javascript_module_matches_every_vector(tmp_path):
    vectors = ROOT / "exports" / "interpolation_vectors.json"
    report = run_node_check(tmp_path, JS_MODULE, NODE_CHECK, vectors)
    assert report["failures"] == []
    assert report["checks"] == count_checks()
