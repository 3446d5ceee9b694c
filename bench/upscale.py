"""AI upscaling throughput: frames per second through exports.upscale on one machine.

    .venv/bin/python bench/upscale.py [--model tiny|compact|esrgan|PATH] [--size 608x1080]
        [--frames 4] [--tile 256] [--overlap 16] [--batch 4] [--device cpu] [--dtype float32]

No weights can be downloaded, so the built-in models have random weights (speed does not
depend on the values): ``tiny`` is the test model (Real-ESRGAN compact, 8 features,
2 convolutions, 2x), ``compact`` has the shape of realesr-animevideov3 (64 features,
16 convolutions, 4x), ``esrgan`` that of RealESRGAN_x4plus (RRDBNet, 64 features,
23 blocks, 4x; very slow on CPU). PATH benchmarks a real .pth/.safetensors file.
Default size: a 9:16 crop of a 1080p frame, 608x1080 (width x height). One warm-up
frame is not timed. Prints a markdown row for the bench README.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exports.upscale import _import_spandrel, load_upscaler


def build_model(name: str, folder: str) -> str:
    import torch

    _import_spandrel()
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    model = {
        "tiny": lambda: Compact(num_feat=8, num_conv=2, upscale=2),
        "compact": lambda: Compact(num_feat=64, num_conv=16, upscale=4),
        "esrgan": lambda: ESRGAN(num_filters=64, num_blocks=23, scale=4),
    }[name]()
    path = os.path.join(folder, f"{name}.pth")
    torch.save(model.state_dict(), path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny, compact, esrgan or a file path")
    parser.add_argument("--size", default="608x1080", help="WIDTHxHEIGHT of the input frames")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if any)")
    parser.add_argument("--dtype", default=None, help="float32, float16 or bfloat16")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    args = parser.parse_args()

    import torch

    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="bench-upscale-") as folder:
        path = args.model if os.path.exists(args.model) else build_model(args.model, folder)
        up = load_upscaler(
            path,
            device=args.device,
            tile=args.tile,
            overlap=args.overlap,
            batch=args.batch,
            dtype=args.dtype,
        )
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), np.uint8) for _ in range(args.frames)]

    def sync():
        if up.device.startswith("cuda"):
            torch.cuda.synchronize()

    up.upscale(frames[:1])  # warm-up: allocator, kernel choice
    sync()
    start = time.perf_counter()
    out = up.upscale(frames)
    sync()
    seconds = time.perf_counter() - start
    assert out[0].shape == (height * up.scale, width * up.scale, 3)

    if up.device.startswith("cuda"):
        machine = torch.cuda.get_device_name()
    else:
        machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    if args.header:
        print("| model | machine | device | dtype | frame | output | tile/overlap/batch | fps |")
        print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.model if args.model in ('tiny', 'compact', 'esrgan') else up.model['name']}"
        f" ({up.model['architecture']} {' '.join(up.model['tags'])} {up.scale}x)"
        f" | {machine} | {up.device} | {up.dtype} | {width}x{height}"
        f" | {width * up.scale}x{height * up.scale}"
        f" | {args.tile}/{args.overlap}/{args.batch} | {args.frames / seconds:.2f} |"
    )


if __name__ == "__main__":
    main()
