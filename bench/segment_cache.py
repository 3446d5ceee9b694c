"""Re-export after changing one clip of five, against a full export: the segment cache.

    .venv/bin/python bench/segment_cache.py       # --clips 5 --seconds 3 --rounds 3
                                                  # --preset veryfast --json out.json

A reel of plays is edited and re-exported often. Framing exports render one segment per
clip and reuse the unchanged ones (``exports/segments.py``). This renders five
generated 1280x720 30 fps game clips with sound (a 9:16 window sliding across each,
one with a slow-motion stretch) to 1080x1920, crf 20, the export's preset, through
``exports.segments.render_by_segments`` as an export does, in this process:

* **full**: an empty cache, every segment rendered, then joined;
* **re-export**: the same reel with one clip's crop keyframes moved: that segment
  rendered, four reused, all joined;
* **one pass**: the same reel rendered in one piece (``render_framing``, what exports
  did before segments): what segmenting costs a first export.

Both measured back to back in each round (a fresh cache per round); the ratio is the
median of the rounds' re-export / full. Goal (issue 11): at most 0.3. Printed as a
markdown table.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT, FPS = 1280, 720, 30


def make_sources(folder: Path, clips: int, seconds: float) -> list[Path]:
    from projects.synthetic import write_game_clip

    paths = []
    for n in range(clips):
        path = folder / f"play{n}.mp4"
        write_game_clip(path, width=WIDTH, height=HEIGHT, fps=FPS, seconds=seconds,
                        with_audio=True)  # fmt: skip
        paths.append(path)
    return paths


def reel(paths, seconds, preset, moved: int | None = None):
    from exports.render import ClipSpec, FramingSpec

    width = HEIGHT * 9 / 16
    clips = []
    for n, path in enumerate(paths):
        shift = 40.0 if n == moved else 0.0
        keyframes = [
            {"time": 0.0, "x": 0.0 + shift, "y": 0.0, "width": width, "height": HEIGHT},
            {"time": seconds, "x": WIDTH - width - 40.0 + shift, "y": 0.0, "width": width,
             "height": HEIGHT},
        ]  # fmt: skip
        slow = [{"start": 1.0, "end": 1.5, "speed": 0.5}] if n == 2 else []
        clips.append(ClipSpec(str(path), WIDTH, HEIGHT, FPS, seconds, crop_keyframes=keyframes,
                              segments=slow, has_audio=True))  # fmt: skip
    return FramingSpec(clips, 1080, 1920, preset=preset)


def timed(spec, paths, cache, out) -> tuple[float, int]:
    from exports.segments import render_by_segments

    started = time.perf_counter()
    _result, rendered = render_by_segments(
        spec, out, cache=cache, source_ids=[p.name for p in paths]
    )
    return time.perf_counter() - started, rendered


def timed_one_pass(spec, out) -> float:
    from exports.pipeline import render_framing

    started = time.perf_counter()
    render_framing(spec, out)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from exports.segments import SegmentCache

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as tmp:
        tmp = Path(tmp)
        paths = make_sources(tmp, args.clips, args.seconds)
        base = reel(paths, args.seconds, args.preset)
        changed = replace(base, clips=reel(paths, args.seconds, args.preset, moved=1).clips)
        for round_ in range(args.rounds):
            cache = SegmentCache(tmp / f"cache-{round_}", max_bytes=10**10)
            full, rendered_full = timed(base, paths, cache, tmp / "full.mp4")
            again, rendered_again = timed(changed, paths, cache, tmp / "again.mp4")
            one_pass = timed_one_pass(base, tmp / "one-pass.mp4")
            rows.append({"full_s": full, "reexport_s": again, "ratio": again / full,
                         "one_pass_s": one_pass,
                         "rendered": [rendered_full, rendered_again]})  # fmt: skip
            print(f"round {round_ + 1}: full {full:.2f} s ({rendered_full} segments), "
                  f"re-export {again:.2f} s ({rendered_again}), ratio {again / full:.3f}; "
                  f"one pass {one_pass:.2f} s", flush=True)  # fmt: skip
    ratio = statistics.median(r["ratio"] for r in rows)
    print()
    first = statistics.median(r["full_s"] / r["one_pass_s"] for r in rows)
    print("| clips | seconds each | preset | full export (median) | re-export, one clip changed "
          "| ratio (median of rounds) | full by segments / one pass |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.clips} | {args.seconds:g} | {args.preset} "
          f"| {statistics.median(r['full_s'] for r in rows):.2f} s "
          f"| {statistics.median(r['reexport_s'] for r in rows):.2f} s | {ratio:.3f} "
          f"| {first:.2f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rounds": rows, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reeleditor.settings")
    django.setup()
    main()
