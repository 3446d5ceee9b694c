"""The operator's detector interface, with tiny TorchScript models built here.

``BrightestSpot`` is a real (if simple) detector: it reports the brightest pixel of
the frame as the ball, which on the generated footage (a white ball on grass) is the
ball. ``analyse`` with it must find the ball from the model's boxes alone.
"""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reframing import detectors, propose, synthetic_play, vision  # noqa: E402

# torch 2.13 calls TorchScript deprecated in favour of torch.export; operators' detector
# files are still TorchScript (or .pt2, tested below), so the tests make both.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

SCENE = synthetic_play.Scene(seconds=3.0, width=640, height=360, pan=True, seed=41)


class BrightestSpot(torch.nn.Module):
    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        brightness = frame[0].sum(dim=0)  # (H, W)
        index = torch.argmax(brightness)
        width = brightness.shape[1]
        y = (index // width).float()
        x = (index % width).float()
        row = torch.stack([x - 3, y - 3, x + 3, y + 3, torch.tensor(0.9), torch.tensor(1.0)])
        return row.unsqueeze(0)


class WrongShape(torch.nn.Module):
    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return frame.mean(dim=1)


class Raises(torch.nn.Module):
    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        if frame.shape[2] > 0:
            raise RuntimeError("no weights loaded")
        return frame


def save(module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("detector") / "play.mp4"
    return path, synthetic_play.write(SCENE, path)


def test_the_ball_comes_from_the_model_when_one_is_given(clip, tmp_path):
    path, truths = clip
    detector = detectors.load(save(BrightestSpot(), tmp_path / "spot.pt"))
    window = propose.window_for(640, 360, 9 / 16)
    observations, _ = vision.analyse(path, window=window, detector=detector)
    close = []
    for seen in observations[1:]:
        truth = min(truths, key=lambda t: abs(t.time - seen.time))
        if truth.ball_visible and seen.ball is not None:
            close.append(np.hypot(seen.ball[0] - truth.ball[0], seen.ball[1] - truth.ball[1]))
    assert len(close) >= 0.8 * (len(observations) - 1)
    assert np.median(close) < 6
    # No person boxes: no players' cue either (the model said nothing about them).
    assert all(seen.action is None for seen in observations)


def test_detections_are_read_from_the_contracts_rows(tmp_path):
    detector = detectors.load(save(BrightestSpot(), tmp_path / "spot.pt"))
    frame = np.zeros((90, 160, 3), np.uint8)
    frame[40, 100] = 255
    (found,) = detector.detect(frame)
    assert found.label == detectors.BALL and found.score == pytest.approx(0.9)
    assert found.centre == pytest.approx((100, 40))


def test_an_exported_program_works_like_torchscript(tmp_path):
    frame = torch.zeros(1, 3, 90, 160)
    # Exported with a free height and width: the analysis size depends on the clip.
    dims = {
        2: torch.export.Dim("height", min=16, max=4096),
        3: torch.export.Dim("width", min=16, max=4096),
    }
    program = torch.export.export(BrightestSpot(), (frame,), dynamic_shapes={"frame": dims})
    path = tmp_path / "spot.pt2"
    torch.export.save(program, str(path))
    detector = detectors.load(path)
    image = np.zeros((90, 160, 3), np.uint8)
    image[20, 30] = 255
    (found,) = detector.detect(image)
    assert found.centre == pytest.approx((30, 20))


def test_nothing_configured_is_no_detector():
    assert detectors.load("") is None
    assert detectors.load(None) is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not a model") and p, "not a TorchScript model"),
        (lambda p: save(WrongShape(), p), "(N, 6)"),
        (lambda p: save(Raises(), p), "failed on a frame"),
    ],
)
def test_a_bad_model_is_refused_when_loaded_with_a_reason(tmp_path, make, message):
    path = tmp_path / "model.pt"
    make(path)
    with pytest.raises(detectors.DetectorUnavailable, match=re.escape(message)):
        detectors.load(path)


def test_onnx_and_missing_files_say_why(tmp_path):
    onnx = tmp_path / "det.onnx"
    onnx.write_bytes(b"\x08\x01")
    with pytest.raises(detectors.DetectorUnavailable, match="ONNX Runtime"):
        detectors.load(onnx)
    with pytest.raises(detectors.DetectorUnavailable, match="does not exist"):
        detectors.load(tmp_path / "missing.pt")
