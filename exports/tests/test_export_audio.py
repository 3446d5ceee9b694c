"""Where the source's sound lands in real encoded exports: trimmed, slowed, joined.

The synthetic clip's soundtrack (projects.synthetic.audio_samples) is a quiet hum with
a loud quarter-second whistle every 1.5 s, so each whistle is an event with a known
start and length. A framing export keeps the sound in sync at 1x and is silent over a
slow-motion segment (exports/timeline.py); these tests find each whistle in the decoded
output and check where it starts and how long it lasts, for one render
(render_framing), for the segment-join path (exports/segments.py: one render per clip,
joined, the soundtrack encoded once more) and for the overlay export on top of that
(exports/overlay.py: the final video keeps the working video's sound where it was).
"""

import av
import numpy as np
import pytest

from exports import segments
from exports.overlay import render_overlay
from exports.pipeline import render_framing
from exports.render import ClipSpec, FramingSpec, RegionSpec
from projects.synthetic import WHISTLE_EVERY_S, WHISTLE_LENGTH_S, write_game_clip

W, H, FPS = 320, 180, 30
SECONDS = 5.0
WINDOW = 480  # samples: 10 ms at 48 kHz
TIME_TOLERANCE = 0.025  # s: AAC's frames and the 10 ms windows

# Clip A: trimmed to 1.0-4.0 s with a 0.5x segment over 2.0-2.5 s. The output is
#   source 1.0-2.0 -> 0.0-1.0 (whistle at source 1.5 -> 0.5), sound
#   source 2.0-2.5 -> 1.0-2.0, slowed: silent
#   source 2.5-4.0 -> 2.0-3.5 (whistle at source 3.0 -> 2.5), sound
# Clip B: the first second of the clip at 1x, after it: its whistle at 0.0 -> 3.5.
TRIM = (1.0, 4.0)
SLOW = [{"start": 2.0, "end": 2.5, "speed": 0.5}]
WHISTLES_A = [0.5, 2.5]
SILENT_A = (1.0, 2.0)
LENGTH_A = 3.5
WHISTLES_AB = [*WHISTLES_A, 3.5]
LENGTH_AB = 4.5


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio-source") / "game.mp4"
    write_game_clip(path, width=W, height=H, fps=FPS, seconds=SECONDS, with_audio=True)
    return path


def clip_a(source):
    return ClipSpec(str(source), W, H, FPS, SECONDS, trim=TRIM, segments=SLOW, has_audio=True)


def clip_b(source):
    return ClipSpec(str(source), W, H, FPS, SECONDS, trim=(0.0, 1.0), has_audio=True)


def framing(*clips):
    return FramingSpec(list(clips), 160, 90, preset="ultrafast")


def sound(path) -> np.ndarray:
    """The output's first channel, float32 at 48 kHz."""
    with av.open(str(path)) as container:
        assert container.streams.audio, "no audio track"
        assert container.streams.audio[0].codec_context.sample_rate == 48000
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)[0]


def loudness(samples) -> np.ndarray:
    """RMS of each 10 ms window."""
    n = len(samples) // WINDOW
    return np.sqrt(np.mean(samples[: n * WINDOW].reshape(n, WINDOW) ** 2, axis=1))


def whistles(samples) -> list[tuple[float, float]]:
    """(start, length) in seconds of each loud run. The whistle is 2.5 times as loud as
    the hum (0.5 and 0.2 peak in the source; a mono source is 3 dB down on each of the
    export's two channels), and the hum is most of the sound: a run is louder than 1.6
    times the median of what is not silence."""
    rms = loudness(samples)
    loud = rms > 1.6 * np.median(rms[rms > 0.02])
    runs, start = [], None
    for i, on in enumerate([*loud, False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append((start * WINDOW / 48000, (i - start) * WINDOW / 48000))
            start = None
    return runs


def flat_whistles(path) -> list[float]:
    """start, length, start, length... of the output's whistles."""
    return [x for run in whistles(sound(path)) for x in run]


def duration(path, kind) -> float:
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return float(stream.duration * stream.time_base)


def assert_whistles(path, expected_starts, silent=None):
    samples = sound(path)
    found = whistles(samples)
    assert [round(s, 2) for s, _ in found] == pytest.approx(expected_starts, abs=TIME_TOLERANCE)
    for _start, length in found:
        assert length == pytest.approx(WHISTLE_LENGTH_S, abs=TIME_TOLERANCE), found
    rms = loudness(samples)
    if silent is not None:
        a, b = silent
        inside = rms[round((a + 0.03) * 100) : round((b - 0.03) * 100)]
        assert inside.max() < 0.005, "the slowed part is not silent"
    # Sound (hum) between the whistles, outside the silent part.
    hum = [
        v
        for i, v in enumerate(rms[3:-3], start=3)
        if not (silent and silent[0] - 0.03 <= i / 100 <= silent[1] + 0.03)
        and not any(s - 0.03 <= i / 100 <= s + WHISTLE_LENGTH_S + 0.03 for s in expected_starts)
    ]
    assert min(hum) > 0.05


def test_the_synthetic_whistle_comes_every_1_5_seconds(source):
    # What the expectations above rest on: the source's own whistles.
    found = whistles(sound(source))
    expected = [n * WHISTLE_EVERY_S for n in range(int(SECONDS / WHISTLE_EVERY_S) + 1)]
    assert [s for s, _ in found] == pytest.approx(expected, abs=TIME_TOLERANCE)


def test_a_trimmed_slowed_export_moves_each_whistle_where_its_frames_go(source, tmp_path):
    out = tmp_path / "one.mp4"
    render_framing(framing(clip_a(source)), out)
    assert duration(out, "video") == pytest.approx(LENGTH_A, abs=1 / FPS)
    assert duration(out, "audio") == pytest.approx(LENGTH_A, abs=1 / FPS)
    assert_whistles(out, WHISTLES_A, silent=SILENT_A)


def test_the_segment_join_and_the_overlay_export_keep_the_whistles_in_place(source, tmp_path):
    spec = framing(clip_a(source), clip_b(source))
    cache = segments.SegmentCache(tmp_path / "cache", max_bytes=10**9)
    joined = tmp_path / "joined.mp4"
    result, rendered = segments.render_by_segments(spec, joined, cache=cache, source_ids=["a", "b"])
    assert rendered == 2 and result.has_audio
    assert duration(joined, "video") == pytest.approx(LENGTH_AB, abs=1 / FPS)
    assert duration(joined, "audio") == pytest.approx(LENGTH_AB, abs=1 / FPS)
    assert_whistles(joined, WHISTLES_AB, silent=SILENT_A)

    # The same as one render of the whole spec, to the 10 ms window.
    single = tmp_path / "single.mp4"
    render_framing(spec, single)
    assert flat_whistles(single) == pytest.approx(flat_whistles(joined), abs=0.011)

    # The final video over the joined working video: the sound stays where it was.
    region = RegionSpec(
        0.0, 2.0, "dim_outside", "#ffd400", 2, [{"time": 0.0, "x": 80, "y": 45, "rx": 30, "ry": 20}]
    )
    final = tmp_path / "final.mp4"
    render_overlay(joined, [region], final, preset="ultrafast")
    assert duration(final, "video") == pytest.approx(LENGTH_AB, abs=1 / FPS)
    assert_whistles(final, WHISTLES_AB, silent=SILENT_A)
