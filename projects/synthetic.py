"""Synthetic "game footage" for demo data and tests.

The clips look vaguely like a broadcast of a football match seen from above: a striped
green pitch, six coloured players and an orange ball. Everything is a pure function of
the frame time, so the same arguments always give the same pixels, and callers (the
crop pipeline tests in particular) can ask where the ball is via :func:`ball_position`
instead of having to detect it.
"""

import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# Colours are BGR because that is what OpenCV draws in.
GRASS_DARK = (40, 120, 40)
GRASS_LIGHT = (50, 140, 50)
LINE_WHITE = (255, 255, 255)
BALL_ORANGE = (0, 140, 255)
TEXT_WHITE = (255, 255, 255)

# Distinct, saturated colours that are neither green (the grass), white (the lines)
# nor orange (the ball), so nothing can be mistaken for the ball by colour alone.
PLAYER_COLOURS = (
    (40, 40, 220),  # red
    (200, 60, 20),  # blue
    (0, 220, 240),  # yellow
    (180, 40, 160),  # purple
    (30, 30, 30),  # black
    (220, 200, 0),  # cyan
)

AUDIO_RATE = 48000
TONE_HZ = 440.0
WHISTLE_HZ = 3000.0
WHISTLE_EVERY_S = 1.5
WHISTLE_LENGTH_S = 0.25


def ball_position(t, width, height):
    """Centre of the ball, in pixels, at ``t`` seconds.

    A Lissajous curve with incommensurate frequencies: smooth, covers most of the
    pitch over a few seconds and never leaves it (amplitudes stay inside the lines).
    """
    x = width / 2 + 0.38 * width * math.sin(0.9 * t)
    y = height / 2 + 0.32 * height * math.sin(1.3 * t + 0.5)
    return x, y


def ball_radius(height):
    """Ball radius in pixels; big enough to survive 4:2:0 chroma subsampling."""
    return max(5, round(height / 80))


def player_position(index, t, width, height):
    """Centre of player ``index`` at ``t`` seconds: a slow, per-player ellipse."""
    speed = 0.35 + 0.07 * index
    phase = index * 2 * math.pi / len(PLAYER_COLOURS)
    # Spread the players' home spots over the pitch so they do not all bunch up.
    home_x = width * (0.2 + 0.6 * (index % 3) / 2)
    home_y = height * (0.3 if index < 3 else 0.7)
    x = home_x + 0.12 * width * math.sin(speed * t + phase)
    y = home_y + 0.12 * height * math.cos(1.3 * speed * t + phase)
    return x, y


def draw_pitch(width, height):
    """The static background; drawn once per clip and copied for every frame."""
    pitch = np.empty((height, width, 3), dtype=np.uint8)
    stripes = 10
    for i in range(stripes):
        x0 = i * width // stripes
        x1 = (i + 1) * width // stripes
        pitch[:, x0:x1] = GRASS_DARK if i % 2 == 0 else GRASS_LIGHT

    thickness = max(1, height // 270)
    margin_x = round(width * 0.04)
    margin_y = round(height * 0.06)
    cx, cy = width // 2, height // 2
    cv2.rectangle(
        pitch, (margin_x, margin_y), (width - margin_x, height - margin_y), LINE_WHITE, thickness
    )
    cv2.line(pitch, (cx, margin_y), (cx, height - margin_y), LINE_WHITE, thickness)
    cv2.circle(pitch, (cx, cy), round(height * 0.15), LINE_WHITE, thickness, cv2.LINE_AA)
    cv2.circle(pitch, (cx, cy), max(2, thickness * 2), LINE_WHITE, -1, cv2.LINE_AA)
    return pitch


def draw_frame(pitch, index, fps):
    """Frame ``index``: players, then the ball on top (so it is never hidden), then text."""
    height, width = pitch.shape[:2]
    t = index / fps
    frame = pitch.copy()

    player_radius = max(4, round(height / 45))
    for i, colour in enumerate(PLAYER_COLOURS):
        x, y = player_position(i, t, width, height)
        cv2.circle(frame, (round(x), round(y)), player_radius, colour, -1, cv2.LINE_AA)

    bx, by = ball_position(t, width, height)
    radius = ball_radius(height)
    cv2.circle(frame, (round(bx), round(by)), radius, BALL_ORANGE, -1, cv2.LINE_AA)
    cv2.circle(frame, (round(bx), round(by)), radius, LINE_WHITE, 1, cv2.LINE_AA)

    scale = height / 1080
    cv2.putText(
        frame,
        f"frame {index:05d}",
        (round(20 * scale) + 2, round(40 * scale) + 8),
        cv2.FONT_HERSHEY_SIMPLEX,
        max(0.3, scale),
        TEXT_WHITE,
        max(1, round(2 * scale)),
        cv2.LINE_AA,
    )
    return frame


def audio_samples(start, count):
    """Mono float32 samples ``[start, start + count)`` of the soundtrack.

    A quiet 440 Hz hum with a loud high "whistle" for a quarter second every 1.5 s,
    so audio-aware code has events to find.
    """
    t = (start + np.arange(count, dtype=np.float64)) / AUDIO_RATE
    tone = 0.2 * np.sin(2 * np.pi * TONE_HZ * t)
    whistle = 0.5 * np.sin(2 * np.pi * WHISTLE_HZ * t)
    in_whistle = np.mod(t, WHISTLE_EVERY_S) < WHISTLE_LENGTH_S
    return np.where(in_whistle, whistle, tone).astype(np.float32)


def add_video_stream(container, width, height, rate):
    stream = container.add_stream(
        "libx264",
        rate=rate,
        # A keyframe every two seconds keeps seeking in the clips cheap.
        options={"crf": "23", "preset": "ultrafast", "g": str(max(1, round(2 * rate)))},
    )
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = 1 / rate
    return stream


def add_audio_stream(container):
    stream = container.add_stream("aac", rate=AUDIO_RATE)
    stream.layout = "mono"
    # FFmpeg's native AAC encoder only accepts planar float ("fltp").
    stream.format = "fltp"
    return stream


def audio_frame(start, count):
    # Planar layout: one row per channel, so mono is shape (1, count).
    frame = av.AudioFrame.from_ndarray(
        audio_samples(start, count)[np.newaxis, :], format="fltp", layout="mono"
    )
    frame.sample_rate = AUDIO_RATE
    frame.pts = start
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame


def encode_clip(container, width, height, fps, total_frames, with_audio, progress):
    rate = Fraction(fps).limit_denominator(1001)
    video = add_video_stream(container, width, height, rate)
    audio = add_audio_stream(container) if with_audio else None
    pitch = draw_pitch(width, height)

    for index in range(total_frames):
        bgr = draw_frame(pitch, index, float(rate))
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
        frame.pts = index
        frame.time_base = video.codec_context.time_base
        container.mux(video.encode(frame))

        if audio is not None:
            # Cut the soundtrack at the same instants as the video frames so both
            # tracks end together whatever the frame rate.
            start = int(index * AUDIO_RATE / rate)
            end = int((index + 1) * AUDIO_RATE / rate)
            container.mux(audio.encode(audio_frame(start, end - start)))

        if progress is not None:
            progress(index + 1, total_frames)

    # Flush the encoders' delayed packets.
    container.mux(video.encode(None))
    if audio is not None:
        container.mux(audio.encode(None))


def write_game_clip(
    path, *, width=1920, height=1080, fps=30, seconds=4.0, with_audio=False, progress=None
):
    """Write an H.264 MP4 of synthetic game footage to ``path``.

    The file is written under a temporary name in the same directory and renamed into
    place at the end, so a reader never sees a half-written clip at ``path``.
    """
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"width and height must be positive and even, got {width}x{height}")
    if fps <= 0 or seconds <= 0:
        raise ValueError("fps and seconds must be positive")
    total_frames = max(1, round(seconds * fps))

    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # The temporary suffix says nothing about the format, so name the muxer.
        with av.open(
            tmp_name, "w", format="mp4", container_options={"movflags": "+faststart"}
        ) as container:
            encode_clip(container, width, height, fps, total_frames, with_audio, progress)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
