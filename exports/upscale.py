"""AI super-resolution of video frames: Real-ESRGAN and the other architectures spandrel reads.

    upscaler = load_upscaler()              # settings.UPSCALE_MODEL_PATH, best device
    big = upscaler.upscale([frame, ...])    # RGB uint8 HxWx3 -> (H*scale)x(W*scale)x3

Loading. Only ``.pth`` and ``.safetensors`` files are read. ``.pth`` files are pickles, so
they are read with ``torch.load(weights_only=True)``: torch's restricted unpickler, which
builds tensors and plain containers and refuses every other global, so a crafted file can
not run code (spandrel's own ``.pth`` path uses its allow-list unpickler instead; we read
the state dict ourselves and hand it to spandrel only for architecture detection).
``.pt`` (TorchScript, which is code) and ``.ckpt`` are refused. The model must be an RGB
super-resolution ``ImageModelDescriptor`` with scale >= 2: 1x restoration models, face
restoration, inpainting and the like raise ``UpscalerUnavailable`` with the reason.

Precision. On CUDA: float16 when the model supports it (``supports_half``, true of the
Real-ESRGAN family), else bfloat16 where the model and the GPU support it, else float32.
On CPU: float32. bfloat16 on CPU was measured far slower here (torch 2.13.0+cpu, 2-core
AMD EPYC, AVX2, no native bf16), and less exact (up to 7/255 off fp32 for RRDBNet):

    model (random weights)            tile   float32    bfloat16
    Compact 8nf/2nc 2x (test model)   256    131 ms     1164 ms    (8.9x slower)
    Compact 64nf/16nc 4x (animevideo)  64    675 ms    14072 ms   (21x slower)
    RRDBNet 64nf/23b 4x (x4plus)       32    402 ms    58354 ms  (145x slower)

CPUs with native bf16 (AMX, AVX512-BF16) may differ: ``bench/upscale.py --dtype bfloat16``
re-measures, and ``load_upscaler(dtype=...)`` forces a dtype.

Tiling. A frame is cut into windows of at most ``tile`` x ``tile`` input pixels. Next
windows start ``tile - 2*overlap`` apart (the last one is moved back to end at the frame
edge), so neighbours overlap by at least ``2*overlap``. Each window's output keeps only its
part up to the middle of each overlap: at least ``overlap`` pixels of real context on every
inner side, so a model whose receptive field reaches less than ``overlap`` pixels gives
exactly the untiled result, with no seams. All windows of a frame have the same size, so
windows (of one frame, or of several frames of the same size) go through the model
``batch`` at a time; frames no larger than ``tile`` are one window each.

Importing. spandrel imports torchvision (for LaMa and RestoreFormer only, neither of which
we use), and torchvision's wheel here fails to import on CPU torch. See ``_import_spandrel``.
"""

import contextlib
import copy
import enum
import logging
import os
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MODEL_EXTENSIONS = (".pth", ".safetensors")


class UpscalerUnavailable(Exception):
    """No usable model; ``reason`` (also the message) says why, in words for the UI."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- Importing spandrel ---------------------------------------------------------------

_import_lock = threading.Lock()
_spandrel = None


def _import_spandrel():
    """Import spandrel, even where ``import torchvision`` fails.

    spandrel imports every architecture it knows when it is imported, and two of them
    (LaMa: ``InterpolationMode`` and ``rotate``; RestoreFormer: ``normalize``) import
    from ``torchvision.transforms.functional`` at module level. The torchvision wheel that
    pip installs for torch 2.13 is built against CUDA and raises on CPU torch
    (``RuntimeError: operator torchvision::nms does not exist``). When the real import
    fails, stand-ins for those three names are put in ``sys.modules`` only while spandrel
    imports, then the previous entries are restored, so the rest of the process still
    sees the real torchvision failure. The stand-ins raise if LaMa or RestoreFormer are
    ever run, which this module never does (it refuses non-super-resolution models).
    When torchvision imports fine, it is used as is and nothing is stubbed.
    """
    global _spandrel
    with _import_lock:
        if _spandrel is None:
            try:
                import torchvision  # noqa: F401
            except Exception as exc:  # RuntimeError, OSError (CUDA libraries), ImportError
                logger.info("torchvision unusable (%s); importing spandrel without it", exc)
                with _torchvision_stand_in(exc):
                    import spandrel
            else:
                import spandrel
            _spandrel = spandrel
    return _spandrel


@contextlib.contextmanager
def _torchvision_stand_in(error: BaseException):
    saved = {
        name: module
        for name, module in sys.modules.items()
        if name == "torchvision" or name.startswith("torchvision.")
    }
    for name in saved:
        del sys.modules[name]

    def unavailable(*args, **kwargs):
        raise RuntimeError(f"torchvision is not usable in this environment: {error}")

    class InterpolationMode(enum.Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"
        BICUBIC = "bicubic"

    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = InterpolationMode
    functional.rotate = functional.normalize = unavailable
    root.transforms, transforms.functional = transforms, functional
    stand_ins = {m.__name__: m for m in (root, transforms, functional)}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


# --- Loading --------------------------------------------------------------------------


def _read_state_dict(path: Path) -> dict:
    """The file's tensors, without running any code the file might carry."""
    import torch

    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def _load_descriptor(path):
    """Read and check a model file on the CPU; raise UpscalerUnavailable saying why not."""
    if not path:
        raise UpscalerUnavailable("AI upscaling is not configured (UPSCALE_MODEL_PATH is not set)")
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in MODEL_EXTENSIONS:
        raise UpscalerUnavailable(
            f"unsupported model file type {path.suffix or '(none)'!r} for {name}: "
            "use a .pth or .safetensors file"
        )
    if not path.is_file():
        raise UpscalerUnavailable(f"model file not found: {path}")
    try:
        spandrel = _import_spandrel()
    except ImportError as exc:
        raise UpscalerUnavailable(
            "the AI upscaling packages are not installed on this machine "
            f"(requirements-upscale.txt): {exc}"
        ) from exc
    try:
        state_dict = _read_state_dict(path)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UpscalerUnavailable(
            f"could not read {name} as a weights-only model file: {detail}"
        ) from exc
    if not isinstance(state_dict, dict):
        raise UpscalerUnavailable(f"{name} does not hold a state dict of model weights")
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(
            spandrel.canonicalize_state_dict(state_dict)
        )
    except spandrel.UnsupportedModelError as exc:
        raise UpscalerUnavailable(f"{name}: unsupported model architecture") from exc
    except Exception as exc:
        raise UpscalerUnavailable(f"{name}: not a model spandrel can load ({exc})") from exc

    arch = descriptor.architecture.name
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise UpscalerUnavailable(
            f"{name} is a {arch} {descriptor.purpose.lower()} model, not a super-resolution model"
        )
    if descriptor.purpose != "SR" or descriptor.scale < 2:
        raise UpscalerUnavailable(
            f"{name} is a {descriptor.scale}x {arch} {descriptor.purpose} model, "
            "not a super-resolution (2x or more) model"
        )
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise UpscalerUnavailable(
            f"{name} takes {descriptor.input_channels} and gives {descriptor.output_channels} "
            "channels; only RGB models are supported"
        )
    return descriptor


def _model_info(path, descriptor) -> dict:
    return {
        "name": Path(path).name,
        "architecture": descriptor.architecture.name,
        "scale": descriptor.scale,
        "tags": list(descriptor.tags),
    }


def _default_dtype(descriptor, device: str) -> str:
    import torch

    if device.startswith("cuda"):
        if descriptor.supports_half:
            return "float16"
        if descriptor.supports_bfloat16 and torch.cuda.is_bf16_supported():
            return "bfloat16"
    return "float32"  # CPU: bf16 measured slower, see the module docstring


def load_upscaler(
    path: str | None = None,
    *,
    device: str | None = None,
    tile: int = 256,
    overlap: int = 16,
    batch: int = 4,
    dtype: str | None = None,
) -> "Upscaler":
    """Load a super-resolution model ready to run; path defaults to UPSCALE_MODEL_PATH.

    ``device``: "cuda" when available, else "cpu". ``dtype``: chosen per device (see the
    module docstring) unless given. Raises UpscalerUnavailable saying why not.
    """
    import torch

    if path is None:
        from django.conf import settings

        path = settings.UPSCALE_MODEL_PATH
    if tile < 1 or overlap < 0 or tile - 2 * overlap < 1:
        raise ValueError(f"tile {tile} must be larger than twice the overlap {overlap}")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    descriptor = _load_descriptor(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or _default_dtype(descriptor, device)
    if dtype not in ("float16", "bfloat16", "float32"):
        raise ValueError(f"unknown dtype {dtype!r}")
    try:
        descriptor.to(device=torch.device(device), dtype=getattr(torch, dtype))
    except Exception as exc:
        raise UpscalerUnavailable(
            f"cannot run {Path(path).name} on {device} in {dtype}: {exc}"
        ) from exc
    descriptor.eval()
    return Upscaler(
        descriptor,
        info=_model_info(path, descriptor),
        device=device,
        dtype=dtype,
        tile=tile,
        overlap=overlap,
        batch=batch,
    )


_availability_lock = threading.Lock()
_availability_cache: dict = {}  # absolute path -> ((mtime_ns, size), result)


def availability(path: str | None = None) -> dict:
    """``{"available", "reason", "model"}`` for the UI and API; cheap after the first call.

    The first call for a file reads and checks it on the CPU (no device, no torch import
    at all when nothing is configured); the answer is cached by path, mtime and size.
    """
    if path is None:
        from django.conf import settings

        path = settings.UPSCALE_MODEL_PATH
    key = version = None
    with contextlib.suppress(OSError):
        if path:
            stat = os.stat(path)
            key, version = os.path.abspath(path), (stat.st_mtime_ns, stat.st_size)
    with _availability_lock:
        cached = _availability_cache.get(key)
        if cached is not None and cached[0] == version:
            return copy.deepcopy(cached[1])
        try:
            descriptor = _load_descriptor(path)
        except UpscalerUnavailable as exc:
            result = {"available": False, "reason": exc.reason, "model": None}
        else:
            info = _model_info(path, descriptor)
            result = {
                "available": True,
                "reason": f"{info['scale']}x {info['architecture']} model {info['name']}",
                "model": info,
            }
            del descriptor
        if key is not None:
            _availability_cache[key] = (version, result)
    return copy.deepcopy(result)


# --- Running --------------------------------------------------------------------------


def _windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """Windows along one axis: ``(start, keep_start, keep_end)``, each ``min(tile, length)``
    long, whose kept parts cover ``[0, length)`` exactly once, each kept part at least
    ``overlap`` away from its window's inner edges."""
    if length <= tile:
        return [(0, 0, length)]
    starts = [*range(0, length - tile, tile - 2 * overlap), length - tile]
    # Cut each overlap in its middle: [starts[i], starts[i - 1] + tile) is >= 2*overlap long.
    cuts = [0] + [(starts[i] + starts[i - 1] + tile) // 2 for i in range(1, len(starts))]
    cuts.append(length)
    return [(start, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]


class Upscaler:
    """A loaded model: ``upscale(frames)``; ``scale``, ``device``, ``dtype``, ``model``."""

    def __init__(self, descriptor, *, info, device, dtype, tile, overlap, batch):
        from spandrel import ModelTiling

        self._descriptor = descriptor
        self.model = info
        self.scale: int = descriptor.scale
        self.device: str = device
        self.dtype: str = dtype
        self.tile = tile
        self.overlap = overlap
        self.batch = batch
        # Models that tile internally (or need the whole picture) get whole frames.
        self._tiled = descriptor.tiling != ModelTiling.INTERNAL
        # What the model has run so far: seconds in forward passes and the input pixels
        # they took (windows, overlaps included); the runner records them per export.
        self.seconds = 0.0
        self.model_pixels = 0

    def __repr__(self):
        return (
            f"<Upscaler {self.model['name']} {self.model['architecture']} {self.scale}x "
            f"{self.device} {self.dtype} tile={self.tile}>"
        )

    def upscale(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """RGB uint8 HxWx3 frames in, RGB uint8 (H*scale)x(W*scale)x3 frames out, in order."""
        by_shape: dict[tuple, list[int]] = {}
        for i, frame in enumerate(frames):
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frame {i}: expected RGB uint8 HxWx3, got {frame.shape}")
            by_shape.setdefault(frame.shape[:2], []).append(i)
        results: list = [None] * len(frames)
        for (h, w), indices in by_shape.items():
            self._upscale_same_size(frames, indices, h, w, results)
        return results

    def _upscale_same_size(self, frames, indices, h, w, results):
        s = self.scale
        tile = self.tile if self._tiled else max(h, w)
        rows, cols = _windows(h, tile, self.overlap), _windows(w, tile, self.overlap)
        th, tw = min(tile, h), min(tile, w)
        for i in indices:
            results[i] = np.empty((h * s, w * s, 3), np.uint8)
        jobs = [(i, row, col) for i in indices for row in rows for col in cols]
        for b in range(0, len(jobs), self.batch):
            chunk = jobs[b : b + self.batch]
            crops = [frames[i][y : y + th, x : x + tw] for i, (y, _, _), (x, _, _) in chunk]
            outputs = self._run(np.stack(crops))
            for out, (i, (y, ky0, ky1), (x, kx0, kx1)) in zip(outputs, chunk, strict=True):
                results[i][ky0 * s : ky1 * s, kx0 * s : kx1 * s] = out[
                    (ky0 - y) * s : (ky1 - y) * s, (kx0 - x) * s : (kx1 - x) * s
                ]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """NxHxWx3 uint8 -> Nx(H*s)x(W*s)x3 uint8 through the model, one forward pass."""
        import torch

        descriptor = self._descriptor
        began = time.perf_counter()
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=True)
            x = x.permute(0, 3, 1, 2).to(descriptor.dtype).div_(255).contiguous()
            y = descriptor(x)  # clamped to [0, 1]
            y = y.float().mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1)
            out = y.cpu().numpy()  # waits for the device: the time below is the model's
        self.seconds += time.perf_counter() - began
        self.model_pixels += batch.shape[0] * batch.shape[1] * batch.shape[2]
        return out


def model_pixels_per_frame(height: int, width: int, *, tile: int = 256, overlap: int = 16) -> int:
    """Input pixels the model runs for one ``height`` x ``width`` frame, tiled as
    ``Upscaler`` tiles it (the defaults are ``load_upscaler``'s)."""
    rows, cols = _windows(height, tile, overlap), _windows(width, tile, overlap)
    return len(rows) * len(cols) * min(tile, height) * min(tile, width)


# The windows measured when nothing has been recorded yet: the first small enough to be
# quick on a CPU for the largest models (RRDBNet x4plus: about 1.6 s); larger ones, up to
# the tile size exports run, while a pass takes under MEASURE_BUDGET seconds (a small
# window's fixed costs overstate a small model's time per pixel several times).
MEASURE_WINDOWS = (64, 128, 256)
MEASURE_BUDGET = 0.6  # seconds of timed passes a window, at most MEASURE_PASSES of them
MEASURE_PASSES = 5
_speed_lock = threading.Lock()
_speed_cache: dict = {}  # absolute path -> ((mtime_ns, size), seconds per model megapixel)


def measured_speed(path: str | None = None) -> float | None:
    """Seconds per megapixel of model input, measured here on the CPU in float32 (the
    web process has no GPU to speak of): square windows of ``MEASURE_WINDOWS``, growing
    while a pass is quick, each set up by one pass and then timed over a few, the
    fastest kept. Cached by path, mtime and size; None without a usable model."""
    if path is None:
        from django.conf import settings

        path = settings.UPSCALE_MODEL_PATH
    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    key, version = os.path.abspath(path), (stat.st_mtime_ns, stat.st_size)
    with _speed_lock:
        cached = _speed_cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            upscaler = load_upscaler(path, device="cpu", dtype="float32", batch=1)
        except UpscalerUnavailable:
            return None
        largest = MEASURE_WINDOWS[-1]
        image = np.random.default_rng(0).integers(0, 256, (1, largest, largest, 3), np.uint8)
        for side in MEASURE_WINDOWS:
            window = np.ascontiguousarray(image[:, :side, :side])
            upscaler._run(window)  # a new shape's first pass sets up (allocations, kernels)
            passes = []
            while len(passes) < MEASURE_PASSES and sum(passes) < MEASURE_BUDGET:
                upscaler.seconds = 0.0
                upscaler._run(window)
                passes.append(upscaler.seconds)
            # The fastest pass: other processes on the CPU only ever add time.
            speed = min(passes) / (side * side / 1e6)
            if min(passes) > MEASURE_BUDGET / MEASURE_PASSES:
                break
        _speed_cache[key] = (version, speed)
        return speed
