"""Where each output frame and audio sample of a framing export comes from (no video)."""

from fractions import Fraction

import pytest

from exports.render import ClipSpec, FramingSpec
from exports.timeline import (
    clip_timeline,
    output_rate,
    plan,
    sample_at,
    snap_to_frame,
    trim_range,
)

F30 = Fraction(30)


def clip(duration=2.0, fps=30.0, **edits):
    return ClipSpec(path="clip.mp4", width=320, height=180, fps=fps, duration=duration, **edits)


def source_frames(timeline, fps=30):
    """The source frame index each output frame shows (latest at or before)."""
    return [int(timeline.source_time(j) * fps + 1e-6) for j in range(timeline.frame_count)]


def test_a_plain_clip_is_one_piece_frame_for_frame():
    timeline = clip_timeline(clip(), F30)
    assert timeline.frame_count == 60
    assert source_frames(timeline) == list(range(60))
    assert timeline.audio_runs() == [(0, 96000, 0)]


def test_trim_keeps_frames_in_start_to_end():
    timeline = clip_timeline(clip(trim=(0.5, 1.5)), F30)
    assert timeline.frame_count == 30
    assert source_frames(timeline) == list(range(15, 45))
    assert timeline.audio_runs() == [(0, 48000, 24000)]


def test_trim_boundaries_between_frames_snap_to_the_next_frame():
    assert snap_to_frame(0.51, 30) == pytest.approx(16 / 30)
    assert snap_to_frame(0.5, 30) == 0.5
    timeline = clip_timeline(clip(trim=[0.51, 1.49]), F30)
    assert source_frames(timeline) == list(range(16, 45))


def test_slow_motion_doubles_the_frames_of_the_segment_and_silences_them():
    segments = [{"start": 0.5, "end": 1.0, "speed": 0.5}]
    timeline = clip_timeline(clip(segments=segments), F30)
    assert timeline.frame_count == 75
    frames = source_frames(timeline)
    assert frames[:15] == list(range(15))
    assert frames[15:45] == [f for f in range(15, 30) for _ in (0, 1)]
    assert frames[45:] == list(range(30, 60))
    assert timeline.audio_runs() == [
        (0, 24000, 0),
        (24000, 72000, None),
        (72000, 120000, 48000),
    ]


def test_segments_are_cut_to_the_trim_and_overlaps_go_to_the_earlier():
    segments = [
        {"start": 1.2, "end": 5.0, "speed": 0.5},  # past the trim end
        {"start": 0.0, "end": 0.6, "speed": 0.5},  # before the trim start
        {"start": 1.0, "end": 1.3, "speed": 0.5},  # overlaps the first one listed
        {"start": 0.7, "end": 0.8, "speed": 1},  # 1x: the same as no segment
    ]
    timeline = clip_timeline(clip(trim=(0.5, 1.5), segments=segments), F30)
    pieces = [(round(p.source_start, 6), round(p.source_end, 6), p.speed) for p in timeline.pieces]
    assert pieces == [(0.5, 0.6, 0.5), (0.6, 1.0, 1.0), (1.0, 1.5, 0.5)]
    assert timeline.frame_count == 6 + 12 + 30


def test_a_clip_at_another_frame_rate_is_sampled_at_the_output_rate():
    timeline = clip_timeline(clip(duration=1.0, fps=25.0), F30)
    assert timeline.frame_count == 30
    shown = [int(timeline.source_time(j) * 25 + 1e-6) for j in range(30)]
    assert shown[0] == 0 and shown[-1] == 24
    assert shown == sorted(shown)
    assert len(set(shown)) == 25  # every source frame is shown, some twice


def test_trim_accepts_a_pair_a_dict_or_an_open_end():
    assert trim_range(clip(trim=(0.5, 1.0))) == (0.5, 1.0)
    assert trim_range(clip(trim={"start": 0.25, "end": 3.0})) == (0.25, 2.0)
    assert trim_range(clip(trim=[0.5, None])) == (0.5, 2.0)
    assert trim_range(clip()) == (0.0, 2.0)


def test_a_plan_places_clips_end_to_end_and_honours_max_seconds():
    spec = FramingSpec([clip(), clip(trim=(0.0, 1.0))], 180, 320)
    whole = plan(spec)
    assert whole.fps == 30
    assert whole.first_frames == (0, 60)
    assert whole.total_frames == 90
    short = plan(FramingSpec(spec.clips, 180, 320, max_seconds=2.5))
    assert short.total_frames == 75
    assert (short.frames_of(0), short.frames_of(1)) == (60, 15)
    assert plan(FramingSpec(spec.clips, 180, 320, fps=25)).total_frames == 75


def test_frame_rates_are_exact_fractions():
    assert output_rate(29.97002997002997) == Fraction(30000, 1001)
    assert output_rate(30.0) == 30
    with pytest.raises(ValueError):
        output_rate(0)


def test_audio_sample_positions_do_not_drift():
    ntsc = Fraction(30000, 1001)
    assert sample_at(30000, ntsc) == 1001 * 48000
    sizes = {sample_at(j + 1, ntsc) - sample_at(j, ntsc) for j in range(1000)}
    assert sizes <= {1601, 1602}
    assert sample_at(90, F30) == 144000
