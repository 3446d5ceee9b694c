"""An operator's detector model for "follow the play", optional: people and the ball.

Without one, :mod:`reframing.vision` finds the play with classical vision. With
``FOLLOW_DETECTOR_PATH`` naming a TorchScript file (``torch.jit.save`` of a module) or an
exported program (``.pt2``, ``torch.export.save``), its detections replace the classical
ball and player cues. The contract:

- input: a float32 tensor ``(1, 3, H, W)``, RGB in 0-1, at the analysis size;
- output: a float32 tensor ``(N, 6)``: ``x1, y1, x2, y2`` in pixels of the input,
  ``score`` in 0-1, ``class`` (0 a person, 1 the ball).

An exported program must be exported with a free height and width
(``torch.export.Dim``): the analysis size follows the clip's shape. The file is checked
when loaded (a probe frame must give that shape), so a wrong model
fails with a sentence at the job's start, not half way through. ONNX files are refused
with a message: ONNX Runtime is not one of our dependencies.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PERSON, BALL = 0, 1
MIN_SCORE = 0.3


class DetectorUnavailable(Exception):
    """The configured detector cannot be used; the message says why."""


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    label: int

    @property
    def centre(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return ((x1 + x2) / 2, (y1 + y2) / 2)


class TorchScriptDetector:
    def __init__(self, path, *, probe_size=(360, 640)):
        try:
            import torch
        except ImportError:
            raise DetectorUnavailable(
                "A detector model needs PyTorch on this machine (requirements-upscale.txt)."
            ) from None

        self.torch = torch
        try:
            self.module = _load_module(torch, Path(path))
        except (RuntimeError, ValueError, OSError) as exc:
            kind = "an exported program" if Path(path).suffix == ".pt2" else "a TorchScript model"
            raise DetectorUnavailable(f"{Path(path).name} is not {kind}: {exc}") from None
        self.detect(np.zeros((*probe_size, 3), np.uint8))  # the contract, checked now

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        torch = self.torch
        tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
        try:
            with torch.inference_mode():
                out = self.module(tensor)
        except Exception as exc:  # the operator's code: any failure is the model's
            raise DetectorUnavailable(f"The detector failed on a frame: {exc}") from None
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != 6:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise DetectorUnavailable(f"The detector must output an (N, 6) tensor, not {shape}.")
        rows = out.detach().to(torch.float32).numpy()
        return [
            Detection((float(r[0]), float(r[1]), float(r[2]), float(r[3])), float(r[4]), int(r[5]))
            for r in rows
            if r[4] >= MIN_SCORE and int(r[5]) in (PERSON, BALL)
        ]


def _load_module(torch, path: Path):
    if path.suffix == ".pt2":  # torch.export.save: the format torch now recommends
        return torch.export.load(str(path)).module()
    import warnings

    with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated; it still loads
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def load(path) -> TorchScriptDetector | None:
    """The detector at ``path`` ("" or None: none configured)."""
    if not path:
        return None
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        raise DetectorUnavailable("ONNX detectors need ONNX Runtime, which is not installed here.")
    if not path.is_file():
        raise DetectorUnavailable(f"{path} does not exist.")
    return TorchScriptDetector(path)
