"""Tests for the synthetic footage generator and the upload probe.

Plain pytest, no database: both modules are pure Python on top of PyAV.
"""

import av
import cv2
import numpy as np
import pytest

from projects.probe import InvalidVideo, probe_video
from projects.synthetic import BALL_ORANGE, ball_position, write_game_clip

WIDTH, HEIGHT, FPS = 320, 180, 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A small 2 s clip shared by the read-only tests."""
    path = tmp_path_factory.mktemp("clip") / "game.mp4"
    write_game_clip(path, width=WIDTH, height=HEIGHT, fps=FPS, seconds=2.0)
    return path


def decoded_frame(path, index):
    """Frame ``index`` of ``path`` as a BGR array."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"{path} has no frame {index}")


def assert_rejected(path):
    with pytest.raises(InvalidVideo) as excinfo:
        probe_video(path)
    message = str(excinfo.value)
    # A sentence for a human, not an FFmpeg error string.
    assert message[0].isupper() and message.endswith(".")
    return message


def write_audio_only(path, seconds=1.0):
    rate = 48000
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        t = np.arange(int(rate * seconds)) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[np.newaxis, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def remux(src, dst, format_name):
    """Copy the video packets of ``src`` into a ``format_name`` container at ``dst``."""
    with av.open(str(src)) as source, av.open(str(dst), "w", format=format_name) as target:
        in_stream = source.streams.video[0]
        out_stream = target.add_stream_from_template(in_stream)
        for packet in source.demux(in_stream):
            if packet.dts is None:  # the flush packet at end of file
                continue
            packet.stream = out_stream
            target.mux(packet)


def test_generated_clip_probes_to_requested_shape(clip):
    info = probe_video(clip)

    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert info.fps == pytest.approx(FPS)
    assert info.frame_count == 2 * FPS
    assert info.duration == pytest.approx(2.0, abs=1 / FPS)
    assert (info.container, info.extension, info.codec) == ("mp4", "mp4", "h264")
    assert info.has_audio is False


def test_generated_clip_is_faststart(clip):
    # The index ("moov" box) must come before the media data so browsers can start
    # playing, and so a cut-off file still opens (which the truncation test relies on).
    data = clip.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


def test_with_audio_adds_a_decodable_audio_track(tmp_path):
    path = tmp_path / "with_audio.mp4"
    write_game_clip(path, width=WIDTH, height=HEIGHT, fps=FPS, seconds=1.0, with_audio=True)

    info = probe_video(path)
    assert info.has_audio is True
    assert info.frame_count == FPS

    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        samples = sum(frame.samples for frame in container.decode(audio))
    assert samples / audio.sample_rate == pytest.approx(1.0, abs=0.05)


def test_generation_is_deterministic(tmp_path):
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    for path in (first, second):
        write_game_clip(path, width=WIDTH, height=HEIGHT, fps=FPS, seconds=0.5)

    assert np.array_equal(decoded_frame(first, 0), decoded_frame(second, 0))


def test_ball_position_matches_the_drawn_ball(clip):
    for index in (0, 17, 45):
        frame = decoded_frame(clip, index)
        x, y = ball_position(index / FPS, WIDTH, HEIGHT)
        pixel = frame[round(y), round(x)].astype(int)
        # Lossy compression and 4:2:0 chroma shift the colour a little, not a lot.
        assert np.abs(pixel - np.array(BALL_ORANGE)).max() < 45, (index, pixel)


def test_ball_moves_over_time():
    start = np.array(ball_position(0.0, WIDTH, HEIGHT))
    later = np.array(ball_position(1.0, WIDTH, HEIGHT))
    assert np.linalg.norm(later - start) > WIDTH / 10


def test_progress_is_reported_per_frame(tmp_path):
    calls = []
    write_game_clip(
        tmp_path / "p.mp4",
        width=WIDTH,
        height=HEIGHT,
        fps=10,
        seconds=0.5,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(n, 5) for n in range(1, 6)]


def test_failed_generation_leaves_no_file_behind(tmp_path):
    def explode(done, total):
        raise RuntimeError("cancelled")

    # A directory of its own: other fixtures may put things in tmp_path.
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError):
        write_game_clip(out / "x.mp4", width=WIDTH, height=HEIGHT, progress=explode)

    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("format_name", "container", "extension"),
    [("mov", "mov", "mov"), ("matroska", "matroska", "mkv")],
)
def test_extension_comes_from_the_container(clip, tmp_path, format_name, container, extension):
    # Deliberately misnamed: the probe must look at the bytes, not the name.
    path = tmp_path / "upload.mp4"
    remux(clip, path, format_name)

    info = probe_video(path)
    assert (info.container, info.extension) == (container, extension)
    assert (info.width, info.height) == (WIDTH, HEIGHT)


def test_it_rejects_random_bytes(tmp_path):
    path = tmp_path / "random.mp4"
    path.write_bytes(np.random.default_rng(42).bytes(200_000))
    assert_rejected(path)


def test_it_rejects_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert "empty" in assert_rejected(path)


def test_it_rejects_text_file(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("These are not the frames you are looking for.\n" * 100)
    assert_rejected(path)


def test_it_rejects_png_renamed_to_mp4(tmp_path):
    png = tmp_path / "still.png"
    assert cv2.imwrite(str(png), np.full((180, 320, 3), (40, 120, 40), np.uint8))
    path = tmp_path / "still.mp4"
    png.rename(path)
    assert "image" in assert_rejected(path)


def test_it_rejects_truncated_mp4(tmp_path):
    whole = tmp_path / "whole.mp4"
    write_game_clip(whole, width=WIDTH, height=HEIGHT, fps=FPS, seconds=2.0)
    data = whole.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])

    assert "truncated" in assert_rejected(path)


def test_it_rejects_audio_only_file(tmp_path):
    path = tmp_path / "song.m4a"
    write_audio_only(path)
    assert "no video" in assert_rejected(path)


def test_it_rejects_single_frame_video(tmp_path):
    path = tmp_path / "one_frame.mp4"
    write_game_clip(path, width=WIDTH, height=HEIGHT, fps=FPS, seconds=1 / FPS)
    assert "single picture" in assert_rejected(path)


def test_it_rejects_absurd_frame_rate(tmp_path):
    path = tmp_path / "fast.mp4"
    write_game_clip(path, width=WIDTH, height=HEIGHT, fps=1000, seconds=0.05)
    assert "frame rate" in assert_rejected(path)
