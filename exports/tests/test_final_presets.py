"""The final video's presets in the overlay render: a smaller size, the quality's CRF and
the title card at the start, with the sound moved to stay with its picture.

The source is a synthetic working video (360x640, 2 s at 30 fps) whose soundtrack is a
quiet hum with a loud whistle over 0-0.25 s and 1.5-1.75 s (projects/synthetic.py).
"""

import av
import numpy as np
import pytest

from exports import titlecard
from exports.overlay import render_overlay
from exports.render import RegionSpec
from projects.synthetic import write_game_clip

WIDTH, HEIGHT, FPS, SECONDS = 360, 640, 30, 2.0
CARD = {
    "enabled": True,
    "player": "Maya Okafor #7",
    "team": "Riverside U14",
    "date": "2026-11-28",
    "primary": "#12325f",
    "accent": "#ffc72c",
}
CARD_FRAMES = round(titlecard.SECONDS * FPS)
CODEC_TOLERANCE = 8  # mean absolute RGB difference of a whole frame after one encode


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("working") / "working.mp4"
    write_game_clip(path, width=WIDTH, height=HEIGHT, fps=FPS, seconds=SECONDS, with_audio=True)
    return path


def frames(path):
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def loudness(path):
    """RMS of the first channel in 10 ms windows, from time 0 of the file."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks, first = [], None
        for frame in container.decode(stream):
            if first is None:
                first = float(frame.pts * frame.time_base)
            chunks.append(frame.to_ndarray()[0])
    samples = np.concatenate(chunks)
    rate = stream.codec_context.sample_rate
    # Where the track starts late, the player plays silence until then.
    samples = np.concatenate([np.zeros(round(first * rate), np.float32), samples])
    window = rate // 100
    return [
        float(np.sqrt(np.mean(samples[i : i + window] ** 2)))
        for i in range(0, len(samples), window)
    ]


def difference(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_the_title_card_comes_first_then_every_frame_of_the_video(source, tmp_path):
    result = render_overlay(source, [], tmp_path / "final.mp4", preset="ultrafast", title_card=CARD)
    out, original = frames(result.path), frames(source)
    assert len(out) == CARD_FRAMES + len(original)
    card = titlecard.draw(CARD, WIDTH, HEIGHT)
    assert difference(out[0], card) < CODEC_TOLERANCE
    assert difference(out[CARD_FRAMES - 1], card) < CODEC_TOLERANCE
    # The video after the card is the working video, frame for frame.
    for index in (0, len(original) // 2, len(original) - 1):
        assert difference(out[CARD_FRAMES + index], original[index]) < CODEC_TOLERANCE
    assert result.duration == pytest.approx(titlecard.SECONDS + SECONDS, abs=1 / FPS)


def test_the_card_is_silent_and_the_sound_moves_with_its_picture(source, tmp_path):
    result = render_overlay(source, [], tmp_path / "final.mp4", preset="ultrafast", title_card=CARD)
    assert result.has_audio
    rms = loudness(result.path)
    card_end = round(titlecard.SECONDS * 100)  # in 10 ms windows
    assert max(rms[: card_end - 2]) < 0.005  # the card: silence
    # The whistles of 0-0.25 s and 1.5-1.75 s, each the card's length later, as long.
    loud = [i for i, value in enumerate(rms) if value > 0.25]
    first = [i for i in loud if i < card_end + 100]
    second = [i for i in loud if i >= card_end + 100]
    assert abs(first[0] - card_end) <= 3 and abs(len(first) - 25) <= 3
    assert abs(second[0] - (card_end + 150)) <= 3 and abs(len(second) - 25) <= 3
    # The hum between them is there too: nothing else went silent.
    assert min(rms[card_end + 30 : card_end + 145]) > 0.05


def test_a_smaller_resolution_scales_every_frame_and_the_card(source, tmp_path):
    result = render_overlay(
        source, [], tmp_path / "final.mp4", preset="ultrafast", size=(180, 320), title_card=CARD
    )
    assert (result.width, result.height) == (180, 320)
    out = frames(result.path)
    assert out[0].shape == (320, 180, 3)
    small_card = titlecard.draw(CARD, 180, 320)
    assert difference(out[0], small_card) < CODEC_TOLERANCE


def test_scaling_alone_re_encodes_and_keeps_the_sound_in_place(source, tmp_path):
    result = render_overlay(source, [], tmp_path / "final.mp4", preset="ultrafast", size=(180, 320))
    assert (result.width, result.height) == (180, 320)
    assert len(frames(result.path)) == len(frames(source))
    loud = [i for i, value in enumerate(loudness(result.path)) if value > 0.25]
    assert loud[0] <= 2  # the first whistle still starts at 0 s


def test_regions_are_drawn_in_working_video_time_after_the_card(source, tmp_path):
    spot = RegionSpec(
        1.0,
        1.5,
        "dim_outside",
        "#ffd400",
        0,
        [{"time": 1.0, "x": 180, "y": 320, "rx": 60, "ry": 60}],
    )
    result = render_overlay(
        source, [spot], tmp_path / "final.mp4", preset="ultrafast", title_card=CARD
    )
    out, original = frames(result.path), frames(source)
    far = (slice(560, 600), slice(20, 60))  # grass, far from the ellipse
    lit = CARD_FRAMES + 36  # 1.2 s into the working video
    assert out[lit][far].mean() < original[36][far].mean() * 0.6  # dimmed outside
    assert difference(out[CARD_FRAMES + 10][far], original[10][far]) < CODEC_TOLERANCE  # not yet


def test_a_higher_quality_makes_a_bigger_file(source, tmp_path):
    spot = RegionSpec(
        0.0,
        2.0,
        "dim_outside",
        "#ffd400",
        4,
        [{"time": 0.0, "x": 180, "y": 320, "rx": 60, "ry": 60}],
    )
    sizes = {}
    for name, crf in (("high", 17), ("small", 26)):
        result = render_overlay(
            source, [spot], tmp_path / f"{name}.mp4", preset="ultrafast", crf=crf
        )
        sizes[name] = result.size_bytes
    assert sizes["high"] > sizes["small"] * 1.3
