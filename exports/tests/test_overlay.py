"""The overlay render: highlight ellipses drawn onto a working video, audio copied.

Each render here is of a small synthetic working video (360x640, 1 s at 30 fps, with
audio), and outputs are compared with the source frame by frame at the same index:
pixels are averaged over small patches so codec noise stays well under the effects.
"""

from pathlib import Path

import av
import numpy as np
import pytest

from exports.errors import RenderCancelled, RenderError
from exports.interpolation import ELLIPSE_KEYS, KeyframePath
from exports.overlay import render_overlay
from exports.render import RegionSpec
from projects.synthetic import write_game_clip

WIDTH, HEIGHT, FPS, FRAMES = 360, 640, 30, 30
CENTRE = {"x": 180.0, "y": 320.0, "rx": 90.0, "ry": 70.0}
FAR = (40, 560)  # (x, y): grass, well outside CENTRE's ellipse
CODEC_TOLERANCE = 6  # mean absolute RGB difference over a patch after a re-encode


def dimmed(rgb):
    return rgb * 0.35


def brightened(rgb):
    return rgb + (255 - rgb) * 0.35


def region(effect, keyframes, *, start=0.0, end=1.0, color="#ffd400", stroke_width=0):
    return RegionSpec(start, end, effect, color, stroke_width, keyframes)


def still(effect, **kwargs):
    return region(effect, [{"time": 0.0, **CENTRE}], **kwargs)


def frames(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def patch(frame, x, y, size=2):
    """Mean RGB of the (2 * size + 1) px square around (x, y)."""
    x, y = round(x), round(y)
    return frame[y - size : y + size + 1, x - size : x + size + 1].reshape(-1, 3).mean(axis=0)


def difference(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def packets(path, kind):
    """(seconds, bytes) of each packet of the first stream of ``kind``."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [
            (float(p.pts * p.time_base), bytes(p))
            for p in container.demux(stream)
            if p.dts is not None
        ]


def has_faststart(path):
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("working") / "working.mp4"
    write_game_clip(path, width=WIDTH, height=HEIGHT, fps=FPS, seconds=1.0, with_audio=True)
    return path


@pytest.fixture(scope="module")
def source_frames(source):
    return frames(source)


@pytest.fixture(scope="module")
def render(source, tmp_path_factory):
    """Render ``regions`` onto the source; returns (result, decoded frames)."""
    folder = tmp_path_factory.mktemp("final")
    count = 0

    def render(regions, **kwargs):
        nonlocal count
        count += 1
        result = render_overlay(source, regions, folder / f"final-{count}.mp4", **kwargs)
        return result, frames(result.path)

    return render


@pytest.fixture
def folder(tmp_path):
    """An empty folder of the test's own (conftest puts a ``data`` folder in tmp_path)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def spotlight(render):
    return render([still("dim_outside", color="#ff00ff", stroke_width=8)])


def test_it_keeps_size_frame_rate_and_frame_count(spotlight, source):
    result, out = spotlight
    assert (result.width, result.height, result.fps) == (WIDTH, HEIGHT, FPS)
    assert result.frame_count == len(out) == FRAMES
    assert out[0].shape == (HEIGHT, WIDTH, 3)
    assert result.duration == pytest.approx(1.0, abs=1 / FPS)
    assert has_faststart(Path(result.path))
    with av.open(result.path) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"


def test_it_copies_the_audio_packets_aligned(spotlight, source):
    result, _ = spotlight
    assert result.has_audio
    assert packets(result.path, "audio") == packets(source, "audio")
    # Both tracks still start where they did.
    assert packets(result.path, "video")[0][0] == packets(source, "video")[0][0]


def test_dim_outside_darkens_outside_and_keeps_the_centre(spotlight, source_frames):
    _, out = spotlight
    for index in (0, 15, 29):
        before, after = source_frames[index], out[index]
        assert difference(patch(after, *FAR), dimmed(patch(before, *FAR))) < CODEC_TOLERANCE
        centre = (CENTRE["x"], CENTRE["y"] + 20)  # just off the pitch's centre spot
        assert difference(patch(after, *centre), patch(before, *centre)) < CODEC_TOLERANCE


def test_the_stroke_is_drawn_on_the_ellipse_in_its_colour(spotlight):
    _, out = spotlight
    frame = out[10]
    for x, y in (
        (CENTRE["x"] + CENTRE["rx"], CENTRE["y"]),
        (CENTRE["x"] - CENTRE["rx"], CENTRE["y"]),
        (CENTRE["x"], CENTRE["y"] - CENTRE["ry"]),
    ):
        colour = patch(frame, x, y, size=1)
        assert np.abs(colour - (255, 0, 255)).max() < 40, (x, y, colour)


def test_brighten_inside_brightens_the_centre_only(render, source_frames):
    _, out = render([still("brighten_inside")])
    before, after = source_frames[12], out[12]
    centre = (CENTRE["x"], CENTRE["y"] + 20)
    assert difference(patch(after, *centre), brightened(patch(before, *centre))) < CODEC_TOLERANCE
    assert difference(patch(after, *FAR), patch(before, *FAR)) < CODEC_TOLERANCE
    # No stroke was asked for: the edge is only brightened, not painted yellow.
    edge = patch(after, CENTRE["x"] + CENTRE["rx"], CENTRE["y"], size=1)
    assert edge[2] > 60


def test_the_ellipse_follows_its_keyframes(render, source_frames):
    keyframes = [
        {"time": 0.0, "x": 90.0, "y": 160.0, "rx": 40.0, "ry": 40.0},
        {"time": 1.0, "x": 270.0, "y": 480.0, "rx": 40.0, "ry": 40.0},
    ]
    _, out = render([region("brighten_inside", keyframes)])
    path = KeyframePath(keyframes, ELLIPSE_KEYS)
    early, late = 3, 26
    where = {index: (path.at(index / FPS)["x"], path.at(index / FPS)["y"]) for index in (3, 26)}
    for index, other in ((early, late), (late, early)):
        before, after = source_frames[index], out[index]
        here, there = where[index], where[other]
        assert difference(patch(after, *here), brightened(patch(before, *here))) < CODEC_TOLERANCE
        assert difference(patch(after, *there), patch(before, *there)) < CODEC_TOLERANCE


def test_nothing_changes_outside_start_to_end(render, source_frames):
    # Frame 12 is at exactly 0.4 s and frame 21 at exactly 0.7 s: [start, end).
    _, out = render([still("dim_outside", start=0.4, end=0.7, stroke_width=4)])
    changed = [difference(out[i], source_frames[i]) > 10 for i in range(FRAMES)]
    assert changed == [12 <= i < 21 for i in range(FRAMES)]
    for i in (*range(0, 12), *range(21, FRAMES)):
        assert difference(out[i], source_frames[i]) < 2.5, i


def test_two_spotlights_light_up_both_ellipses(render, source_frames):
    left = {"x": 90.0, "y": 200.0, "rx": 50.0, "ry": 50.0}
    right = {"x": 270.0, "y": 440.0, "rx": 50.0, "ry": 50.0}
    _, out = render(
        [
            region("dim_outside", [{"time": 0, **left}]),
            region("dim_outside", [{"time": 0, **right}]),
        ]
    )
    before, after = source_frames[5], out[5]
    for spot in (left, right):
        lit = (spot["x"], spot["y"])
        assert difference(patch(after, *lit), patch(before, *lit)) < CODEC_TOLERANCE
    assert difference(patch(after, *FAR), dimmed(patch(before, *FAR))) < CODEC_TOLERANCE


def test_it_reports_progress_per_frame(render):
    calls = []
    render([still("brighten_inside")], progress=lambda *call: calls.append(call))
    assert calls == [(done, FRAMES, "overlay") for done in range(1, FRAMES + 1)]


def test_without_regions_it_remuxes_without_re_encoding(source, folder):
    calls = []
    output = folder / "final.mp4"
    result = render_overlay(source, [], output, progress=lambda *call: calls.append(call))
    assert packets(output, "video") == packets(source, "video")
    assert packets(output, "audio") == packets(source, "audio")
    assert (result.frame_count, result.width, result.height) == (FRAMES, WIDTH, HEIGHT)
    assert result.has_audio
    assert has_faststart(output)
    assert calls[-1] == (FRAMES, FRAMES, "remux")


@pytest.mark.parametrize("regions", [[], [still("dim_outside")]], ids=["remux", "render"])
def test_cancel_stops_and_leaves_no_output(source, folder, regions):
    checks = []

    def should_cancel():
        checks.append(1)
        return len(checks) >= 2

    output = folder / "final.mp4"
    with pytest.raises(RenderCancelled):
        render_overlay(source, regions, output, should_cancel=should_cancel)
    assert len(checks) == 2
    assert list(folder.iterdir()) == []


def test_a_missing_working_video_is_source_missing(folder):
    with pytest.raises(RenderError) as caught:
        render_overlay(folder / "nope.mp4", [still("dim_outside")], folder / "final.mp4")
    assert caught.value.code == "source_missing"
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("regions", [[], [still("dim_outside")]], ids=["remux", "render"])
def test_a_corrupt_working_video_is_source_corrupt(folder, regions):
    broken = folder / "working.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(RenderError) as caught:
        render_overlay(broken, regions, folder / "final.mp4")
    assert caught.value.code == "source_corrupt"
    assert sorted(p.name for p in folder.iterdir()) == ["working.mp4"]


@pytest.mark.parametrize("regions", [[], [still("dim_outside")]], ids=["remux", "render"])
def test_a_truncated_working_video_is_source_corrupt(source, folder, regions):
    truncated = folder / "working.mp4"
    data = source.read_bytes()
    truncated.write_bytes(data[: len(data) * 9 // 10])
    with pytest.raises(RenderError) as caught:
        render_overlay(truncated, regions, folder / "final.mp4")
    assert caught.value.code == "source_corrupt"
    assert sorted(p.name for p in folder.iterdir()) == ["working.mp4"]


def test_an_unknown_effect_is_refused(source, folder):
    with pytest.raises(RenderError) as caught:
        render_overlay(source, [still("sparkles")], folder / "final.mp4")
    assert caught.value.code == "invalid_region"
    assert list(folder.iterdir()) == []
