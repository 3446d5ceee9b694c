"""Framing exports by segments: an edit re-renders exactly its clip's segment, the rest
are reused, and the joined video is the same as one rendered with an empty cache.

Real renders of generated clips (with sound), real files, real decoding.
"""

from dataclasses import replace

import av
import numpy as np
import pytest

from exports import segments
from exports.render import ClipSpec, FramingSpec
from projects.synthetic import write_game_clip

W, H, FPS = 320, 180, 30


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segment-sources")
    paths = []
    for n, seconds in enumerate((1.0, 1.5, 1.2)):
        path = folder / f"clip{n}.mp4"
        write_game_clip(path, width=W, height=H, fps=FPS, seconds=seconds, with_audio=n != 1)
        paths.append(path)
    return paths


def spec_of(sources, moved_x=0.0) -> FramingSpec:
    crop = {"y": 0, "width": 101.25, "height": 180}
    clips = [
        ClipSpec(str(path), W, H, FPS, seconds, has_audio=n != 1,
                 crop_keyframes=[{"time": 0, "x": 10.0 + (moved_x if n == 1 else 0), **crop}],
                 segments=[{"start": 0.2, "end": 0.6, "speed": 0.5}] if n == 2 else [])
        for n, (path, seconds) in enumerate(zip(sources, (1.0, 1.5, 1.2), strict=True))
    ]  # fmt: skip
    return FramingSpec(clips, 180, 320, preset="ultrafast")


def render(spec, sources, cache, out):
    ids = [path.name for path in sources]
    return segments.render_by_segments(spec, out, cache=cache, source_ids=ids)


def packets(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pts, bytes(p)) for p in container.demux(stream) if p.dts is not None]


def sound(path):
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def test_an_edit_renders_only_its_clips_segment(sources, tmp_path):
    cache = segments.SegmentCache(tmp_path / "cache", max_bytes=10**9)
    _, rendered = render(spec_of(sources), sources, cache, tmp_path / "a.mp4")
    assert rendered == 3

    _, rendered = render(spec_of(sources), sources, cache, tmp_path / "b.mp4")
    assert rendered == 0
    _, rendered = render(spec_of(sources, moved_x=30), sources, cache, tmp_path / "c.mp4")
    assert rendered == 1  # the moved clip's segment only
    assert len(list((tmp_path / "cache").glob("*.mp4"))) == 4


def test_a_reused_render_is_the_same_as_a_fresh_one(sources, tmp_path):
    warm = segments.SegmentCache(tmp_path / "warm", max_bytes=10**9)
    render(spec_of(sources), sources, warm, tmp_path / "before.mp4")
    reused, rendered = render(spec_of(sources, moved_x=30), sources, warm, tmp_path / "reused.mp4")
    cold = segments.SegmentCache(tmp_path / "cold", max_bytes=10**9)
    fresh, _ = render(spec_of(sources, moved_x=30), sources, cold, tmp_path / "fresh.mp4")

    assert rendered == 1
    assert packets(tmp_path / "reused.mp4") == packets(tmp_path / "fresh.mp4")
    assert np.array_equal(sound(tmp_path / "reused.mp4"), sound(tmp_path / "fresh.mp4"))
    assert (reused.frame_count, reused.duration) == (fresh.frame_count, fresh.duration)


def test_the_joined_video_has_every_clip_in_order_with_sound_in_step(sources, tmp_path):
    cache = segments.SegmentCache(tmp_path / "cache", max_bytes=10**9)
    result, _ = render(spec_of(sources), sources, cache, tmp_path / "out.mp4")

    # 1.0 s + 1.5 s + 1.2 s with 0.4 s at half speed (0.8 s): 4.1 s at 30 fps.
    assert result.frame_count == round(4.1 * FPS)
    assert result.duration == pytest.approx(4.1, abs=0.04)
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == result.frame_count
    samples = sound(tmp_path / "out.mp4")
    assert samples.shape[1] == pytest.approx(4.1 * 48000, abs=2048)
    # The second clip has no sound: its 1.5 s are silence, the others are not.
    assert np.abs(samples[:, int(1.2 * 48000) : int(2.3 * 48000)]).max() < 1e-3
    assert np.abs(samples[:, : int(0.9 * 48000)]).max() > 0.01


def test_a_full_cache_drops_what_the_export_no_longer_uses(sources, tmp_path):
    cache = segments.SegmentCache(tmp_path / "cache", max_bytes=10**9)
    render(spec_of(sources), sources, cache, tmp_path / "out.mp4")
    before = {p.name: p.stat().st_size for p in (tmp_path / "cache").glob("*.mp4")}
    # Room for the three segments of an export, not for a fourth.
    small = segments.SegmentCache(tmp_path / "cache", max_bytes=sum(before.values()) * 5 // 4)

    render(spec_of(sources, moved_x=30), sources, small, tmp_path / "moved.mp4")

    after = {p.name for p in (tmp_path / "cache").glob("*.mp4")}
    moved_key = segments.segment_key(spec_of(sources, moved_x=30), 1, sources[1].name)
    unmoved_key = segments.segment_key(spec_of(sources), 1, sources[1].name)
    assert f"{moved_key}.mp4" in after and f"{unmoved_key}.mp4" not in after
    assert len(after) == 3


def test_a_different_encoder_setting_misses(sources, tmp_path):
    spec = spec_of(sources)
    keys = {segments.segment_key(spec, 0, "clip0.mp4")}
    keys.add(segments.segment_key(replace(spec, preset="veryfast"), 0, "clip0.mp4"))
    keys.add(
        segments.segment_key(replace(spec, output_width=360, output_height=640), 0, "clip0.mp4")
    )
    keys.add(segments.segment_key(spec, 0, "another-source.mp4"))
    assert len(keys) == 4
