"""The framing export pipeline on small synthetic clips with known content.

The clips come from projects.synthetic, so where the ball is at any time is known
(ball_position) and frames can be told apart by their pixels. Clips are generated once
per module; each render here takes a fraction of a second.
"""

import errno
import queue
import struct
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from exports import media_io, pipeline
from exports.errors import RenderCancelled, RenderError
from exports.media_io import remux
from exports.pipeline import even_crop, render_framing
from exports.render import ClipSpec, FramingSpec
from projects.synthetic import ball_position, write_game_clip

W, H, FPS = 320, 180, 30


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline-clips")
    paths = {
        "plain": folder / "plain.mp4",
        "audio": folder / "audio.mp4",
        "fps25": folder / "fps25.mp4",
        "big": folder / "big.mp4",
        "long": folder / "long.mp4",
    }
    write_game_clip(paths["plain"], width=W, height=H, fps=FPS, seconds=2.0)
    write_game_clip(paths["audio"], width=W, height=H, fps=FPS, seconds=2.0, with_audio=True)
    write_game_clip(paths["fps25"], width=W, height=H, fps=25, seconds=1.0)
    write_game_clip(paths["big"], width=640, height=360, fps=FPS, seconds=2.0)
    write_game_clip(paths["long"], width=W, height=H, fps=FPS, seconds=5.0, with_audio=True)
    return paths


@pytest.fixture(scope="module")
def source_frames(clips):
    return decode_bgr(clips["plain"])


def clip_spec(path, **edits):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "fps": float(video.average_rate),
            "duration": float(video.duration * video.time_base),
            "has_audio": bool(container.streams.audio),
        }
    return ClipSpec(path=str(path), **{**info, **edits})


def spec(*clips, width=W, height=H, **options):
    return FramingSpec(list(clips), width, height, **options)


def decode_bgr(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def streams(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {
            "codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "size": (video.codec_context.width, video.codec_context.height),
            "frames": sum(1 for _ in container.demux(video) if _.size),
            "video_duration": float(video.duration * video.time_base),
            "audio": None,
        }
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            info["audio"] = {
                "codec": audio.codec_context.name,
                "rate": audio.codec_context.sample_rate,
                "channels": audio.codec_context.channels,
                "duration": float(audio.duration * audio.time_base),
            }
    return info


def top_level_boxes(path):
    boxes, data = [], Path(path).read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode())
        if size == 0:
            break
        offset += size
    return boxes


def decode_audio(path):
    """Output audio as a float32 (channels, samples) array at 48 kHz."""
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray() for f in container.decode(audio=0)]
    return np.concatenate(chunks, axis=1)


def best_match(frame, candidates):
    errors = {i: float(np.mean((frame.astype(np.int32) - c) ** 2)) for i, c in candidates.items()}
    return min(errors, key=errors.get)


def pipeline_threads():
    return [t for t in threading.enumerate() if t.name.startswith("framing-")]


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir())


@pytest.fixture
def work(tmp_path):
    """An empty folder of the test's own (tmp_path also holds the test's data dir)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture(autouse=True)
def no_thread_leaks():
    yield
    deadline = time.monotonic() + 2
    while pipeline_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pipeline_threads() == []


# --- format, size and frame counts --------------------------------------------------


def test_a_plain_clip_gives_a_faststart_h264_mp4(clips, work):
    out = work / "out.mp4"
    result = render_framing(spec(clip_spec(clips["plain"]), width=180, height=320), out)
    info = streams(out)
    assert info["codec"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert info["size"] == (180, 320)
    assert info["frames"] == 60
    assert info["audio"] is None
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")
    assert (result.width, result.height, result.frame_count) == (180, 320, 60)
    assert result.fps == 30
    assert result.duration == pytest.approx(2.0, abs=1e-6)
    assert result.size_bytes == out.stat().st_size
    assert result.has_audio is False
    assert result.path == str(out)
    assert leftovers(work) == ["out.mp4"]


def test_trim_keeps_only_frames_inside_it(clips, source_frames, work):
    out = work / "out.mp4"
    render_framing(spec(clip_spec(clips["plain"], trim=(0.5, 1.5)), crf=12), out)
    frames = decode_bgr(out)
    assert len(frames) == 30
    # Frame-exact: output frame k is source frame 15 + k.
    for k in (0, 1, 14, 29):
        candidates = {i: source_frames[i] for i in range(max(0, 13 + k), min(60, 18 + k))}
        assert best_match(frames[k], candidates) == 15 + k


def test_a_trim_between_frames_starts_at_the_next_frame(clips, source_frames, work):
    out = work / "out.mp4"
    render_framing(spec(clip_spec(clips["plain"], trim=[0.51, 1.49]), crf=12), out)
    frames = decode_bgr(out)
    assert len(frames) == 29  # source frames 16..44
    candidates = {i: source_frames[i] for i in range(13, 20)}
    assert best_match(frames[0], candidates) == 16


def test_slow_motion_shows_each_frame_of_the_segment_twice(clips, source_frames, work):
    out = work / "out.mp4"
    segments = [{"start": 0.5, "end": 1.0, "speed": 0.5}]
    render_framing(spec(clip_spec(clips["plain"], segments=segments), crf=12), out)
    frames = decode_bgr(out)
    assert len(frames) == 60 + 15
    expected = {0: 0, 14: 14, 15: 15, 16: 15, 17: 16, 18: 16, 44: 29, 45: 30, 74: 59}
    for k, source in expected.items():
        candidates = {i: source_frames[i] for i in range(max(0, source - 3), min(60, source + 4))}
        assert best_match(frames[k], candidates) == source, k


def test_a_trim_far_into_a_clip_seeks_and_stays_frame_exact(clips, work):
    source = decode_bgr(clips["long"])
    out = work / "out.mp4"
    render_framing(spec(clip_spec(clips["long"], trim=(2.9, 4.0)), crf=12), out)
    frames = decode_bgr(out)
    assert len(frames) == 33  # source frames 87..119
    for k in (0, 1, 32):
        candidates = {i: source[i] for i in range(84 + k, 91 + k) if i < len(source)}
        assert best_match(frames[k], candidates) == 87 + k
    # The source's whistle at 3.0 s is 0.1 s into the output.
    samples = decode_audio(out)[0]
    rms = [float(np.sqrt(np.mean(samples[i : i + 480] ** 2))) for i in range(0, len(samples), 480)]
    loud = [i for i, v in enumerate(rms) if v > 0.25]
    assert loud and abs(loud[0] * 0.01 - 0.1) <= 0.03
    assert min(rms[:8]) > 0.05  # the hum before it


def test_two_clips_are_concatenated_in_order(clips, source_frames, work):
    out = work / "out.mp4"
    first = clip_spec(clips["plain"], trim=(0.0, 0.5))
    second = clip_spec(clips["plain"], trim=(1.0, 2.0))
    result = render_framing(spec(first, second, crf=12), out)
    frames = decode_bgr(out)
    assert result.frame_count == len(frames) == 15 + 30
    candidates = {i: source_frames[i] for i in range(10, 35)}
    assert best_match(frames[14], candidates) == 14
    assert best_match(frames[15], candidates) == 30


def test_a_clip_at_another_frame_rate_is_retimed_to_the_output(clips, work):
    out = work / "out.mp4"
    result = render_framing(spec(clip_spec(clips["plain"]), clip_spec(clips["fps25"])), out)
    assert result.fps == 30
    assert result.frame_count == streams(out)["frames"] == 60 + 30
    assert result.duration == pytest.approx(3.0, abs=1e-6)


def test_the_output_frame_rate_can_be_chosen(clips, work):
    out = work / "out.mp4"
    result = render_framing(spec(clip_spec(clips["plain"]), fps=25), out)
    assert (result.fps, result.frame_count) == (25, 50)


def test_max_seconds_stops_early(clips, work):
    out = work / "out.mp4"
    clip = clip_spec(clips["audio"])
    result = render_framing(spec(clip, clip, max_seconds=0.5), out)
    info = streams(out)
    assert result.frame_count == info["frames"] == 15
    assert info["audio"]["duration"] == pytest.approx(info["video_duration"], abs=1 / FPS)


# --- pixels: the crop is where the keyframes say ------------------------------------


def test_the_crop_follows_its_keyframes(clips, work):
    # A 96x96 window centred on the ball at every keyframe; between keyframes the
    # interpolated window must keep the ball near the middle of the picture.
    width, height, box = 640, 360, 96
    keyframes = []
    for i in range(9):
        t = i / 4
        x, y = ball_position(t, width, height)
        keyframes.append(
            {"time": t, "x": x - box / 2, "y": y - box / 2, "width": box, "height": box}
        )
    out = work / "out.mp4"
    clip = clip_spec(clips["big"], crop_keyframes=keyframes)
    render_framing(spec(clip, width=192, height=192), out)
    frames = decode_bgr(out)
    assert len(frames) == 60
    for index in (0, 4, 15, 22, 30, 37, 45, 59):
        b, g, r = (frames[index][..., c].astype(int) for c in range(3))
        ball = (r > 190) & (g > 90) & (g < 190) & (b < 90)
        assert ball.sum() > 100, index  # the ball is there, at twice its size
        ys, xs = np.nonzero(ball)
        assert abs(xs.mean() - 96) < 8 and abs(ys.mean() - 96) < 8, (index, xs.mean(), ys.mean())


def test_a_static_crop_shows_that_part_of_the_source(clips, source_frames, work):
    out = work / "out.mp4"
    left_half = [{"time": 0, "x": 0, "y": 0, "width": W / 2, "height": H}]
    clip = clip_spec(clips["plain"], crop_keyframes=left_half)
    render_framing(spec(clip, width=W, height=2 * H), out)  # scaled up 2x
    frames = decode_bgr(out)
    assert frames[0].shape == (2 * H, W, 3)
    for index in (0, 30, 59):
        small = cv2.resize(frames[index], (W // 2, H), interpolation=cv2.INTER_AREA)
        left = source_frames[index][:, : W // 2]
        right = source_frames[index][:, W // 2 :]
        error = np.abs(small.astype(int) - left).mean()
        assert error < 4, error
        assert np.abs(small.astype(int) - right).mean() > 4 * error
        mse = np.mean((small.astype(float) - left) ** 2)
        assert 10 * np.log10(255**2 / mse) > 30


def test_crop_rectangles_round_like_ffmpeg():
    # Nearest integer (half to even), then down to even; clamped into the frame.
    assert even_crop({"x": 656.25, "y": 0, "width": 607.5, "height": 1080}, 1920, 1080) == (
        656,
        0,
        608,
        1080,
    )
    assert even_crop({"x": 657.5, "y": 1.4, "width": 101.2, "height": 179.9}, 1920, 1080) == (
        658,
        0,
        100,
        180,
    )
    assert even_crop({"x": 3.5, "y": 2.6, "width": 99, "height": 51}, 320, 180) == (4, 2, 98, 50)
    assert even_crop({"x": 300, "y": 170, "width": 100, "height": 50}, 320, 180) == (
        220,
        130,
        100,
        50,
    )
    assert even_crop({"x": 0, "y": 0, "width": 0.4, "height": 999}, 321, 181) == (0, 0, 2, 180)


# --- audio --------------------------------------------------------------------------


def test_audio_passes_through_and_lasts_as_long_as_the_video(clips, work):
    out = work / "out.mp4"
    result = render_framing(spec(clip_spec(clips["audio"])), out)
    info = streams(out)
    assert result.has_audio
    assert info["audio"]["codec"] == "aac"
    assert (info["audio"]["rate"], info["audio"]["channels"]) == (48000, 2)
    assert info["audio"]["duration"] == pytest.approx(info["video_duration"], abs=1 / FPS)
    samples = decode_audio(out)
    assert np.sqrt(np.mean(samples[:, 4800:24000] ** 2)) > 0.05  # the hum is there


def test_slow_motion_is_silent_and_the_rest_stays_in_sync(clips, work):
    out = work / "out.mp4"
    segments = [{"start": 0.5, "end": 1.0, "speed": 0.5}]
    render_framing(spec(clip_spec(clips["audio"], segments=segments)), out)
    info = streams(out)
    assert info["video_duration"] == pytest.approx(2.5)
    assert info["audio"]["duration"] == pytest.approx(2.5, abs=1 / FPS)
    samples = decode_audio(out)[0]
    rms = [float(np.sqrt(np.mean(samples[i : i + 480] ** 2))) for i in range(0, len(samples), 480)]
    # 10 ms windows: sound before 0.5 s, silence over the slowed second, sound after.
    assert min(rms[5:45]) > 0.05
    assert max(rms[55:145]) < 0.005
    assert min(rms[155:240]) > 0.05
    # The source's whistle at 1.5 s (source) is 0.5 s later in the output.
    loud = [i for i, v in enumerate(rms) if v > 0.25 and i > 100]
    assert loud and abs(loud[0] * 0.01 - 2.0) <= 0.03


def test_a_clip_without_audio_is_silence_next_to_one_with_audio(clips, work):
    out = work / "out.mp4"
    result = render_framing(spec(clip_spec(clips["plain"]), clip_spec(clips["audio"])), out)
    info = streams(out)
    assert result.has_audio
    assert info["video_duration"] == pytest.approx(4.0)
    assert info["audio"]["duration"] == pytest.approx(4.0, abs=1 / FPS)
    samples = decode_audio(out)[0]
    assert np.abs(samples[2400:90000]).max() < 0.005
    assert np.sqrt(np.mean(samples[100000:180000] ** 2)) > 0.05


def test_no_audio_track_when_no_clip_has_audio(clips, work):
    out = work / "out.mp4"
    assert render_framing(spec(clip_spec(clips["plain"])), out).has_audio is False
    assert streams(out)["audio"] is None


# --- progress, cancel, errors -------------------------------------------------------


def test_progress_counts_every_frame_then_finishes(clips, work):
    calls = []
    segments = [{"start": 0.0, "end": 0.5, "speed": 0.5}]
    clip = clip_spec(clips["plain"], trim=(0.0, 1.0), segments=segments)
    render_framing(spec(clip), work / "out.mp4", progress=lambda *a: calls.append(a))
    total = 45
    assert {c[1] for c in calls} == {total}
    rendering = [c[0] for c in calls if c[2] == "rendering"]
    assert rendering == list(range(0, total + 1))
    assert calls[-1] == (total, total, "finishing")


def test_cancelling_stops_and_removes_the_output(clips, work):
    out = work / "out.mp4"
    asked = []

    def should_cancel():
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(RenderCancelled):
        render_framing(spec(clip_spec(clips["audio"])), out, should_cancel=should_cancel)
    assert leftovers(work) == []
    assert pipeline_threads() == []


def test_a_missing_source_is_reported(clips, work):
    clip = clip_spec(clips["plain"])
    gone = ClipSpec(**{**clip.__dict__, "path": str(work / "gone.mp4")})
    with pytest.raises(RenderError) as caught:
        render_framing(spec(gone), work / "out.mp4")
    assert caught.value.code == "source_missing"
    assert leftovers(work) == []


def test_a_corrupt_source_is_reported_and_leaves_nothing(clips, work):
    source = work / "sources" / "broken.mp4"
    source.parent.mkdir()
    source.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 64)
    clip = ClipSpec(**{**clip_spec(clips["plain"]).__dict__, "path": str(source)})
    out = work / "out" / "out.mp4"
    out.parent.mkdir()
    with pytest.raises(RenderError) as caught:
        render_framing(spec(clip_spec(clips["plain"]), clip), out)
    assert caught.value.code == "source_corrupt"
    assert caught.value.message
    assert leftovers(out.parent) == []
    assert pipeline_threads() == []


def test_a_truncated_source_is_reported(clips, work):
    data = clips["plain"].read_bytes()
    source = work / "truncated.mp4"
    source.write_bytes(data[: len(data) // 3])  # faststart: the index survives, frames not
    clip = ClipSpec(**{**clip_spec(clips["plain"]).__dict__, "path": str(source)})
    with pytest.raises(RenderError) as caught:
        render_framing(spec(clip), work / "out.mp4")
    assert caught.value.code == "source_corrupt"
    assert leftovers(work) == ["truncated.mp4"]


def test_crop_keyframes_out_of_order_are_refused(clips, work):
    keyframes = [
        {"time": 1.0, "x": 0, "y": 0, "width": 100, "height": 180},
        {"time": 1.0, "x": 50, "y": 0, "width": 100, "height": 180},
    ]
    with pytest.raises(RenderError) as caught:
        render_framing(spec(clip_spec(clips["plain"], crop_keyframes=keyframes)), work / "o.mp4")
    assert caught.value.code == "invalid_edit"
    assert leftovers(work) == []


class FullDisk:
    """An output container that runs out of space after a few packets."""

    def __init__(self, container, packets_allowed):
        self._container = container
        self._allowed = packets_allowed

    def __getattr__(self, name):
        return getattr(self._container, name)

    def mux(self, packets):
        self._allowed -= 1
        if self._allowed < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._container.mux(packets)

    def close(self):
        self._container.close()


def test_a_full_disk_is_reported_and_cleaned_up(clips, work, monkeypatch):
    real_open = media_io.open_output
    monkeypatch.setattr(media_io, "open_output", lambda path: FullDisk(real_open(path), 10))
    with pytest.raises(RenderError) as caught:
        render_framing(spec(clip_spec(clips["audio"])), work / "out.mp4")
    assert caught.value.code == "disk_full"
    assert leftovers(work) == []
    assert pipeline_threads() == []


def test_an_encoder_failure_is_reported_and_cleaned_up(clips, work):
    with pytest.raises(RenderError) as caught:
        render_framing(spec(clip_spec(clips["plain"]), preset="no-such-preset"), work / "o.mp4")
    assert caught.value.code == "encode_failed"
    assert leftovers(work) == []
    assert pipeline_threads() == []


# --- memory: the stages are joined by small queues ----------------------------------


class RecordingQueue(queue.Queue):
    def __init__(self, maxsize):
        super().__init__(maxsize)
        self.puts = 0
        self.peak = 0

    def put(self, item, block=True, timeout=None):
        super().put(item, block, timeout)
        with self.mutex:
            self.puts += 1
            self.peak = max(self.peak, self._qsize())


def test_decoding_never_runs_far_ahead_of_encoding(clips, work, monkeypatch):
    made = []

    def make_queue():
        made.append(RecordingQueue(pipeline.QUEUE_FRAMES))
        return made[-1]

    monkeypatch.setattr(pipeline, "_make_queue", make_queue)
    lead = []

    def progress(done, total, phase):
        if phase == "rendering" and made:
            lead.append(made[0].puts - done)
            time.sleep(0.002)  # a slow consumer: the decoder must wait, not pile up

    clip = clip_spec(clips["big"])
    render_framing(spec(clip, clip, width=360, height=640), work / "o.mp4", progress=progress)
    decoded, encoded = made
    assert 2 <= pipeline.QUEUE_FRAMES <= 4
    assert decoded.puts >= 120 and encoded.puts >= 120
    assert decoded.peak <= pipeline.QUEUE_FRAMES and encoded.peak <= pipeline.QUEUE_FRAMES
    # Frames decoded but not yet handed on: the queue, the one in hand and the next.
    assert max(lead) <= pipeline.QUEUE_FRAMES + 3


# --- remux and AI upscaling ---------------------------------------------------------


def video_packets(path):
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def test_remux_copies_frames_without_reencoding(clips, work):
    rendered = work / "rendered.mp4"
    render_framing(spec(clip_spec(clips["audio"])), rendered)

    out = work / "final.mp4"
    result = remux(rendered, out)

    # The same packets, byte for byte: nothing was decoded or encoded again.
    assert video_packets(out) == video_packets(rendered)
    assert (result.frame_count, result.has_audio) == (60, True)
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")
    assert sorted(leftovers(work)) == ["final.mp4", "rendered.mp4"]


def test_remux_of_a_broken_file_is_an_error(work):
    broken = work / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(RenderError) as caught:
        remux(broken, work / "out.mp4")
    assert caught.value.code == "source_corrupt"
    assert leftovers(work) == ["broken.mp4"]


class NearestNeighbour2x:
    """A stand-in for the AI upscaler: 2x pixel repetition, batches recorded."""

    scale = 2

    def __init__(self):
        self.batches = []

    def upscale(self, images):
        self.batches.append([image.shape for image in images])
        return [np.repeat(np.repeat(image, 2, axis=0), 2, axis=1) for image in images]


def test_the_upscaler_path_gives_the_output_size(clips, source_frames, work):
    upscaler = NearestNeighbour2x()
    out = work / "out.mp4"
    left_half = [{"time": 0, "x": 0, "y": 0, "width": W / 2, "height": H}]
    clip = clip_spec(clips["plain"], crop_keyframes=left_half, trim=(0, 1))
    result = render_framing(spec(clip, width=W, height=2 * H, upscaler=upscaler), out)
    assert (result.width, result.height, result.frame_count) == (W, 2 * H, 30)
    assert sum(len(b) for b in upscaler.batches) == 30
    assert {shape for batch in upscaler.batches for shape in batch} == {(H, W // 2, 3)}
    frame = decode_bgr(out)[10]
    small = cv2.resize(frame, (W // 2, H), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - source_frames[10][:, : W // 2]).mean() < 5


def test_a_failing_upscaler_is_reported(clips, work):
    class Broken:
        scale = 4

        def upscale(self, images):
            raise RuntimeError("CUDA out of memory")

    with pytest.raises(RenderError) as caught:
        render_framing(spec(clip_spec(clips["plain"]), upscaler=Broken()), work / "o.mp4")
    assert caught.value.code == "upscale_failed"
    assert leftovers(work) == []
