"""Framing export speed: our pipeline against the ffmpeg command line doing the same job.

    apt-get install -y ffmpeg        # Debian's ffmpeg, only the benchmark needs it
    .venv/bin/python bench/export_vs_ffmpeg.py [--seconds 10] [--repeat 5]

A generated 1920x1080 30 fps game clip (``--seconds`` long) is framed to 1080x1920: a
608x1080 crop window sliding linearly from the left edge to the right edge over the
clip, Lanczos-scaled, libx264 at crf 20. Ours is ``exports.pipeline.render_framing``
with two crop keyframes (a two-keyframe monotone cubic is a straight line); ffmpeg gets
the same path as a crop ``x`` expression. Both run as child processes, alternately,
``--repeat`` times per preset (5). ffmpeg's fps is frames over its process's wall time;
ours is reported twice: over the ``render_framing`` call (the export as a long-lived
worker runs it) and over the whole child process (which adds ~0.4 s of starting Python
and importing PyAV and numpy). Medians; the ratios are medians of back-to-back pairs,
so the shared machine's changing load mostly cancels out. Peak RSS is read
with ``getrusage(RUSAGE_CHILDREN)`` in a fresh wrapper process per run, so one run's
peak cannot hide another's. A last pair of runs measures our peak RSS on a 10 s and a
60 s clip: it must not grow with the clip's length.

Prints a markdown table (and the PSNR between the two outputs, to show they did the
same work). Clips are cached in ``--workdir``.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT, FPS = 1920, 1080, 30
OUT_WIDTH, OUT_HEIGHT = 1080, 1920
CROP_WIDTH = 608  # FFmpeg's rounding of the 607.5-pixel 9:16 window, as ours does
CRF = 20


def keyframes(seconds: float) -> list[dict]:
    """Left edge at 0 s to right edge at the end: a straight line (two keyframes)."""
    right = WIDTH - CROP_WIDTH
    return [
        {"time": 0.0, "x": 0.0, "y": 0.0, "width": 607.5, "height": float(HEIGHT)},
        {"time": seconds, "x": float(right), "y": 0.0, "width": 607.5, "height": float(HEIGHT)},
    ]


def ffmpeg_command(clip: Path, seconds: float, preset: str, output: Path) -> list[str]:
    right = WIDTH - CROP_WIDTH
    # The same linear path as the keyframes; crop rounds x to the nearest even integer.
    x = f"{right}*clip(t/{seconds},0,1)"
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(clip),
        "-vf", f"crop={CROP_WIDTH}:{HEIGHT}:x='{x}':y=0,"
        f"scale={OUT_WIDTH}:{OUT_HEIGHT}:flags=lanczos",
        "-c:v", "libx264", "-preset", preset, "-crf", str(CRF), "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-an", str(output),
    ]  # fmt: skip


def ours_command(clip: Path, seconds: float, preset: str, output: Path) -> list[str]:
    args = [str(clip), str(seconds), preset, str(output)]
    return [sys.executable, str(Path(__file__).resolve()), "--render", *args]


def render(clip: str, seconds: str, preset: str, output: str) -> None:
    """Child process: one framing export with our pipeline."""
    from exports.pipeline import render_framing
    from exports.render import ClipSpec, FramingSpec

    duration = float(seconds)
    spec = FramingSpec(
        clips=[ClipSpec(clip, WIDTH, HEIGHT, FPS, duration, crop_keyframes=keyframes(duration))],
        output_width=OUT_WIDTH,
        output_height=OUT_HEIGHT,
        preset=preset,
        crf=CRF,
    )
    started = time.perf_counter()
    render_framing(spec, output)
    # The export itself, as a long-lived worker runs it: without starting Python and
    # importing PyAV and numpy (~0.4 s here), which the whole-process time includes.
    print(json.dumps({"render": time.perf_counter() - started}), flush=True)


def measure(command: list[str]) -> None:
    """Wrapper process: run ``command``, print its wall time, CPU time and peak RSS."""
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime  # all threads of the child
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": usage.ru_maxrss / 1024}))  # KiB


def run_measured(command: list[str]) -> dict:
    wrapper = [sys.executable, str(Path(__file__).resolve()), "--measure", "--", *command]
    result = subprocess.run(wrapper, check=True, capture_output=True, text=True)
    merged = {}
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            merged.update(json.loads(line))
    return merged


def game_clip(workdir: Path, seconds: float) -> Path:
    from projects.synthetic import write_game_clip

    path = workdir / f"game-{WIDTH}x{HEIGHT}-{FPS}fps-{seconds:g}s.mp4"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        write_game_clip(path, width=WIDTH, height=HEIGHT, fps=FPS, seconds=seconds)
    return path


def psnr(a: Path, b: Path, frames=(0, 100, 200)) -> float:
    """Mean luma PSNR of a few frames of two videos (dB)."""
    import av
    import numpy as np

    def lumas(path):
        with av.open(str(path)) as container:
            wanted = set(frames)
            return {
                i: f.to_ndarray(format="gray").astype(np.float64)
                for i, f in enumerate(container.decode(video=0))
                if i in wanted
            }

    left, right = lumas(a), lumas(b)
    values = []
    for i in sorted(set(left) & set(right)):
        mse = float(np.mean((left[i] - right[i]) ** 2))
        values.append(99.0 if mse == 0 else 10 * np.log10(255**2 / mse))
    return statistics.mean(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (10)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per tool and preset (5)")
    parser.add_argument("--presets", nargs="+", default=["veryfast", "ultrafast"])
    parser.add_argument("--rss-seconds", type=float, nargs=2, default=[10.0, 60.0])
    parser.add_argument("--rss-preset", default="veryfast")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reeleditor-bench"))
    args = parser.parse_args()

    if shutil.which("ffmpeg") is None:
        sys.exit(
            "ffmpeg is not installed: this benchmark compares against the ffmpeg command "
            "line. Install it (Debian: apt-get install -y ffmpeg) and run again."
        )
    args.workdir.mkdir(parents=True, exist_ok=True)
    clip = game_clip(args.workdir, args.seconds)
    frames = round(args.seconds * FPS)
    cores = os.cpu_count()
    ffmpeg_version = subprocess.run(
        ["ffmpeg", "-version"], capture_output=True, text=True
    ).stdout.split("\n")[0]

    rows = []
    for preset in args.presets:
        ours_out = args.workdir / f"ours-{preset}.mp4"
        ffmpeg_out = args.workdir / f"ffmpeg-{preset}.mp4"
        ours, theirs = [], []
        for _ in range(args.repeat):
            theirs.append(run_measured(ffmpeg_command(clip, args.seconds, preset, ffmpeg_out)))
            ours.append(run_measured(ours_command(clip, args.seconds, preset, ours_out)))
            print(f"{preset}: ffmpeg {theirs[-1]}, ours {ours[-1]}", file=sys.stderr)
        ffmpeg_fps = statistics.median(frames / r["wall"] for r in theirs)
        ours_fps = statistics.median(frames / r["render"] for r in ours)
        rows.append(
            {
                "preset": preset,
                "ffmpeg_fps": ffmpeg_fps,
                "ours_fps": ours_fps,
                "ours_process_fps": statistics.median(frames / r["wall"] for r in ours),
                # Runs are paired (back to back), so the machine's load mostly cancels out.
                "ratio": statistics.median(
                    t["wall"] / o["render"] for t, o in zip(theirs, ours, strict=True)
                ),
                "process_ratio": statistics.median(
                    t["wall"] / o["wall"] for t, o in zip(theirs, ours, strict=True)
                ),
                "ffmpeg_cpu": statistics.median(1000 * r["cpu"] / frames for r in theirs),
                "ours_cpu": statistics.median(1000 * r["cpu"] / frames for r in ours),
                "ffmpeg_rss": max(r["peak_mb"] for r in theirs),
                "ours_rss": max(r["peak_mb"] for r in ours),
                "psnr": psnr(ours_out, ffmpeg_out),
            }
        )

    rss = []
    for seconds in args.rss_seconds:
        long_clip = game_clip(args.workdir, seconds)
        out = args.workdir / f"ours-rss-{seconds:g}s.mp4"
        result = run_measured(ours_command(long_clip, seconds, args.rss_preset, out))
        rss.append((seconds, result["peak_mb"], round(seconds * FPS) / result["render"]))

    print(
        f"\n{WIDTH}x{HEIGHT} {FPS} fps, {args.seconds:g} s ({frames} frames) -> "
        f"{CROP_WIDTH}x{HEIGHT} moving crop -> {OUT_WIDTH}x{OUT_HEIGHT} lanczos -> libx264 "
        f"crf {CRF}; {cores} cores; {ffmpeg_version}; median of {args.repeat} runs\n"
    )
    print(
        "| preset | ffmpeg CLI fps | ours fps (export) | ours / ffmpeg | "
        "ours fps (whole process) | ours / ffmpeg (whole process) | CPU ms/frame ffmpeg | "
        "CPU ms/frame ours | peak RSS ffmpeg | peak RSS ours | PSNR ours vs ffmpeg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['preset']} | {r['ffmpeg_fps']:.1f} | {r['ours_fps']:.1f} | "
            f"{r['ratio']:.2f} | {r['ours_process_fps']:.1f} | {r['process_ratio']:.2f} | "
            f"{r['ffmpeg_cpu']:.1f} | {r['ours_cpu']:.1f} | "
            f"{r['ffmpeg_rss']:.0f} MB | {r['ours_rss']:.0f} MB | {r['psnr']:.1f} dB |"
        )
    print(f"\n| ours, {args.rss_preset}, clip length | peak RSS | fps |")
    print("|---|---|---|")
    for seconds, peak, fps in rss:  # fps of the export itself
        print(f"| {seconds:g} s | {peak:.0f} MB | {fps:.1f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--render":
        render(*sys.argv[2:6])
    elif len(sys.argv) > 2 and sys.argv[1] == "--measure":
        measure(sys.argv[3:])
    else:
        main()
