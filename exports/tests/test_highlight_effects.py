"""The highlight effects' constants and arithmetic: one file, one table, both sides.

``static/js/highlight_effects.json`` holds the numbers (how much a spotlight dims, how
much brightening brightens, the soft edge, the outline, the YUV levels); the overlay
editor's preview fetches it and the final render reads it. ``exports/
highlight_effects_vectors.json`` holds cases (pixels inside and outside, frame sizes,
edge points, strokes, colours) with the values the JS functions
(``static/js/overlay/effects.js``) give; this file checks the constants are well formed,
that the table was computed from them, and that the JS module (run under node) matches
every case. The render is checked against the same table on the Python side.
"""

import json
import re
from pathlib import Path

import pytest

from exports.tests.helpers import run_node_check

ROOT = Path(__file__).resolve().parents[2]
CONSTANTS_PATH = ROOT / "static" / "js" / "highlight_effects.json"
VECTORS_PATH = ROOT / "exports" / "highlight_effects_vectors.json"
JS_MODULE = ROOT / "static" / "js" / "overlay" / "effects.js"
CONSTANTS = json.loads(CONSTANTS_PATH.read_text())
VECTORS = json.loads(VECTORS_PATH.read_text())
EFFECTS = ("dim_outside", "brighten_inside")
SECTIONS = ("rgb", "yuv", "feather", "edge", "stroke", "stroke_colors")


def numbers(value):
    """The constants without their prose: what the table was computed from."""
    if isinstance(value, dict):
        return {k: numbers(v) for k, v in value.items() if k not in ("about", "rounding")}
    return value


def is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- the constants ------------------------------------------------------------------


def test_the_constants_are_well_formed():
    c = CONSTANTS
    assert c["version"] == 1
    assert 0 < c["dim_outside"]["factor"] < 1
    assert 0 < c["brighten_inside"]["amount"] < 1
    feather = c["feather"]
    assert isinstance(feather["min_px"], int) and feather["min_px"] >= 0
    assert is_number(feather["divisor"]) and feather["divisor"] > 0
    assert feather["rounding"] == "half_even"  # Python's round(), which the render uses
    stroke = c["stroke"]
    assert 0 < stroke["chroma_scale"] <= 1
    assert isinstance(stroke["chroma_min_px"], int) and stroke["chroma_min_px"] >= 1
    yuv = c["yuv"]
    assert yuv["grey"] == 128
    assert set(yuv["ranges"]) == {"limited", "full"}
    for levels in yuv["ranges"].values():
        assert set(levels) == {"black", "white", "luma_scale", "chroma_scale"}
        assert all(isinstance(v, int) and 0 <= v <= 255 for v in levels.values())
        assert levels["white"] - levels["black"] == levels["luma_scale"]
    assert set(yuv["matrices"]) == {"bt709", "bt601"}
    for m in yuv["matrices"].values():
        assert set(m) == {"kr", "kb"}
        assert 0 < m["kr"] < 1 and 0 < m["kb"] < 1 and m["kr"] + m["kb"] < 1
    for section in ("dim_outside", "brighten_inside", "feather", "stroke", "yuv"):
        assert c[section]["about"], f"{section} says what it means"


def test_the_constants_are_a_static_file_the_page_can_fetch():
    from django.contrib.staticfiles import finders

    assert Path(finders.find("js/highlight_effects.json")) == CONSTANTS_PATH
    template = (ROOT / "templates" / "projects" / "overlay.html").read_text()
    assert "{% static 'js/highlight_effects.json' %}" in template


def test_the_preview_has_no_copy_of_the_constants():
    # Every number of the effects comes from the JSON: no literal of them in the
    # overlay editor's scripts (effects.js is the arithmetic, not a copy of the values).
    scripts = [ROOT / "static" / "js" / "overlay.js", *sorted(JS_MODULE.parent.glob("*.js"))]
    values = {CONSTANTS["dim_outside"]["factor"], CONSTANTS["brighten_inside"]["amount"]}
    values |= {1 - v for v in values} | {CONSTANTS["feather"]["divisor"]}
    literals = {f"{v:g}" for v in values}
    for script in scripts:
        code = re.sub(r"//.*", "", script.read_text())  # comments may quote them
        found = {n for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", code) if n in literals}
        assert not found, f"{script.name} repeats {found}: read them from highlight_effects.json"


# --- the table ----------------------------------------------------------------------


def test_the_table_was_computed_from_these_constants():
    assert VECTORS["computed_with"] == numbers(
        {k: CONSTANTS[k] for k in ("dim_outside", "brighten_inside", "feather", "stroke", "yuv")}
    ), "highlight_effects.json changed: recompute exports/highlight_effects_vectors.json"


def test_the_table_covers_what_it_promises():
    for section in SECTIONS:
        cases = VECTORS[section]
        assert cases, section
        assert len({c["name"] for c in cases}) == len(cases), f"{section}: names repeat"
    for section in ("rgb", "yuv"):
        cases = VECTORS[section]
        for effect in EFFECTS:
            wheres = {c["where"] for c in cases if c["effect"] == effect}
            assert {"inside", "outside"} <= wheres, (section, effect, wheres)
        assert any(0 < c["weight"] < 1 for c in cases), f"{section}: a pixel on the soft edge"
        for c in cases:
            assert c["weight"] == {"inside": 1, "outside": 0}.get(c["where"], c["weight"])
            assert len(c["input"]) == len(c["expect"]) == 3
    assert {c["range"] for c in VECTORS["yuv"]} == {"limited", "full"}
    assert {c["matrix"] for c in VECTORS["stroke_colors"]} == {"bt709", "bt601"}
    assert any(c["expect"] is None for c in VECTORS["stroke"]), "a stroke of 0 draws nothing"
    halves = [c for c in VECTORS["feather"] if (min(c["frame"]) / 270) % 1 == 0.5]
    assert halves, "a frame whose feather is a half, where Python's round differs"
    everything = [c for s in SECTIONS for c in VECTORS[s]]
    assert sum(bool(c.get("hand_checked")) for c in everything) >= 8
    assert all(c["note"] for c in everything if c.get("hand_checked"))
    assert VECTORS["tolerance"] <= 1e-9
    assert set(VECTORS["render_tolerance"]) == {"about", "levels", "ramp", "edge"}


# --- the browser's side -------------------------------------------------------------

NODE_CHECK = r"""
import { readFileSync } from "node:fs";
const E = await import(process.argv[2]);
const fx = JSON.parse(readFileSync(process.argv[3], "utf8"));
const table = JSON.parse(readFileSync(process.argv[4], "utf8"));
const tol = table.tolerance;
const failures = [];
let checks = 0;
function check(where, got, expected) {
  checks++;
  const ok = expected === null ? got === null : Math.abs(got - expected) <= tol;
  if (!ok) failures.push({ where, got, expected });
}
function checkAll(where, got, expected) {
  if (expected === null || got === null) return check(where, got, expected);
  expected.forEach((value, i) => check(`${where} [${i}]`, got[i], value));
}
for (const c of table.rgb) checkAll(c.name, E.rgbAfter(fx, c.effect, c.weight, c.input), c.expect);
for (const c of table.yuv) {
  checkAll(c.name, E.yuvAfter(fx, c.effect, c.weight, c.range, c.input), c.expect);
}
for (const c of table.feather) check(c.name, E.featherPx(fx, c.frame[0], c.frame[1]), c.expect);
for (const c of table.edge) {
  check(c.name, E.edgeWeight(c.shape, c.feather, c.point[0], c.point[1]), c.expect);
}
for (const c of table.stroke) {
  const px = E.strokePx(fx, c.stroke_width);
  checkAll(c.name, px && [px.luma, px.chroma], c.expect);
}
for (const c of table.stroke_colors) {
  checkAll(c.name, E.colorToYuv(fx, c.color, c.matrix, c.range), c.expect);
}
// The preview's layers are the effects: a black layer at the dim alpha is c * factor,
// a white one at the brighten alpha is c + (255 - c) * amount.
for (const c of [0, 17, 128, 255]) {
  check(`dim layer ${c}`, E.over(c, 0, E.dimLayerAlpha(fx)), c * fx.dim_outside.factor);
  check(`brighten layer ${c}`, E.over(c, 255, E.brightenLayerAlpha(fx)),
        c + (255 - c) * fx.brighten_inside.amount);
}
const halves = [[0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-2.5, -2], [2.4, 2], [2.6, 3]];
for (const [v, expected] of halves) check(`roundHalfEven ${v}`, E.roundHalfEven(v), expected);
console.log(JSON.stringify({ checks, failures }));
"""


def count_checks():
    total = 0
    for section in ("rgb", "yuv", "stroke_colors"):
        total += 3 * len(VECTORS[section])
    total += len(VECTORS["feather"]) + len(VECTORS["edge"])
    total += sum(1 if c["expect"] is None else 2 for c in VECTORS["stroke"])
    return total + 2 * 4 + 7


def test_the_javascript_module_matches_every_vector(tmp_path):
    report = run_node_check(tmp_path, JS_MODULE, NODE_CHECK, CONSTANTS_PATH, VECTORS_PATH)
    assert report["failures"] == []
    assert report["checks"] == count_checks()


# --- the render, against the same table ------------------------------------------------


class _Frame:
    """The three attributes the render's Canvas reads from a decoded frame."""

    def __init__(self, width, height, *, bt709=True, full_range=False):
        self.width, self.height = width, height
        self.colorspace = 1 if bt709 else 5
        self.color_range = 2 if full_range else 1


def test_the_render_reads_the_shared_constants():
    from exports import highlights

    assert highlights.EFFECTS_FILE == CONSTANTS_PATH
    assert CONSTANTS["dim_outside"]["factor"] == highlights.DIM_FACTOR
    assert CONSTANTS["brighten_inside"]["amount"] == highlights.BRIGHTEN_AMOUNT


@pytest.mark.parametrize("case", VECTORS["feather"], ids=lambda c: c["name"])
def test_the_renders_soft_edge_matches_the_table(case):
    from exports.highlights import Canvas

    assert Canvas(_Frame(*case["frame"])).feather == case["expect"]


@pytest.mark.parametrize("case", VECTORS["stroke_colors"], ids=lambda c: c["name"])
def test_the_renders_outline_colours_match_the_table(case):
    from exports.highlights import _parse_color, _rgb_to_yuv

    yuv = _rgb_to_yuv(
        _parse_color(case["color"]), case["matrix"] == "bt709", case["range"] == "full"
    )
    assert list(yuv) == case["expect"]


@pytest.mark.parametrize(
    "case", [c for c in VECTORS["yuv"] if c["weight"] in (0, 1)], ids=lambda c: c["name"]
)
def test_the_renders_effect_maps_match_the_table(case):
    import numpy as np

    from exports.highlights import Canvas, _apply

    canvas = Canvas(_Frame(1080, 1920, full_range=case["range"] == "full"))
    maps = canvas.maps[case["effect"]]
    applies = (case["effect"] == "dim_outside") == (case["where"] == "outside")
    for value, expected, plane_map in zip(case["input"], case["expect"], maps, strict=True):
        pixel = np.array([[value]], np.uint8)
        got = int(_apply(pixel, plane_map)[0, 0]) if applies else value
        assert abs(got - expected) <= VECTORS["render_tolerance"]["levels"], (value, got)
