"""AI upscaling through the real spandrel loading and our tiling, with tiny random-weight models.

No weights can be downloaded, so each model is built from spandrel's own architecture
classes with random weights, saved as a state dict, and loaded back from the file.
"""

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from exports import upscale
from exports.upscale import UpscalerUnavailable, availability, load_upscaler

REPO = Path(__file__).resolve().parents[2]


def compact(scale=2, seed=0):
    """Real-ESRGAN "compact" (SRVGGNetCompact): 4 3x3 convolutions, receptive radius 4 px."""
    upscale._import_spandrel()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    return Compact(num_feat=8, num_conv=2, upscale=scale)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    upscale._import_spandrel()
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    paths = {"compact": folder / "compact-x2.pth", "restore": folder / "compact-x1.pth"}
    torch.save(compact(2).state_dict(), paths["compact"])
    torch.save(compact(1).state_dict(), paths["restore"])
    torch.manual_seed(1)
    esrgan = ESRGAN(num_filters=8, num_blocks=1, scale=4)
    paths["esrgan"] = folder / "esrgan-x4.safetensors"
    save_file({k: v.contiguous() for k, v in esrgan.state_dict().items()}, paths["esrgan"])
    return paths


def frame(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def diff(a, b):
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


# --- Loading ----------------------------------------------------------------------------


def test_loads_pth_and_reports_the_model(models):
    up = load_upscaler(str(models["compact"]), device="cpu")
    assert (up.scale, up.device, up.dtype) == (2, "cpu", "float32")
    assert up.model == {
        "name": "compact-x2.pth",
        "architecture": "RealESRGAN Compact",
        "scale": 2,
        "tags": ["8nf", "2nc"],
    }
    out = up.upscale([frame(48, 64)])
    assert len(out) == 1
    assert out[0].shape == (96, 128, 3) and out[0].dtype == np.uint8


def test_loads_safetensors(models):
    up = load_upscaler(str(models["esrgan"]), device="cpu")
    assert up.scale == 4 and up.model["architecture"] == "ESRGAN"
    assert up.upscale([frame(20, 30)])[0].shape == (80, 120, 3)


def test_default_path_is_the_setting(models, settings):
    settings.UPSCALE_MODEL_PATH = str(models["compact"])
    assert load_upscaler().scale == 2
    settings.UPSCALE_MODEL_PATH = ""
    with pytest.raises(UpscalerUnavailable, match="UPSCALE_MODEL_PATH is not set"):
        load_upscaler()


def test_output_is_the_model_output(models):
    """The whole uint8 -> float -> model -> uint8 path agrees with calling the model."""
    up = load_upscaler(str(models["compact"]), device="cpu")
    f = frame(48, 64)
    model = compact(2).eval()
    with torch.inference_mode():
        x = torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255
        expected = (model(x).clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0)
    out = up.upscale([f])[0]
    assert diff(out, expected.numpy()).max() <= 1
    # Not a trivial model: the output is far from a nearest-neighbour enlargement.
    nearest = f.repeat(2, axis=0).repeat(2, axis=1)
    assert diff(out, nearest).mean() > 3


# --- Tiling -----------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "tile", "overlap"), [(64, 32, 8), (48, 32, 8), (100, 40, 4)])
def test_windows_cover_the_axis_once_with_context(length, tile, overlap):
    windows = upscale._windows(length, tile, overlap)
    kept = [k for _, k0, k1 in windows for k in range(k0, k1)]
    assert kept == list(range(length))
    for i, (start, k0, k1) in enumerate(windows):
        assert start >= 0 and start + tile <= length
        if i > 0:
            assert k0 - start >= overlap
        if i < len(windows) - 1:
            assert start + tile - k1 >= overlap


def seams(length, tile, overlap, scale):
    """Output coordinates where one window's kept part meets the next."""
    return [k0 * scale for _, k0, _ in upscale._windows(length, tile, overlap)[1:]]


def border_mask(shape, tile, overlap, scale, band=8):
    """Output pixels within the test model's reach (4 input px = 8 output px) of a seam."""
    h, w = shape[:2]
    mask = np.zeros((h * scale, w * scale), bool)
    for y in seams(h, tile, overlap, scale):
        mask[y - band : y + band] = True
    for x in seams(w, tile, overlap, scale):
        mask[:, x - band : x + band] = True
    return mask


def test_tiled_equals_untiled_without_seams(models):
    path = str(models["compact"])
    f = frame(48, 64)
    whole = load_upscaler(path, device="cpu", tile=256).upscale([f])[0]
    tiled = load_upscaler(path, device="cpu", tile=32, overlap=8).upscale([f])[0]
    assert seams(64, 32, 8, 2) and seams(48, 32, 8, 2)  # really tiled, on both axes
    d = diff(whole, tiled)
    assert d.max() <= 1
    mask = border_mask(f.shape, 32, 8, 2)
    assert d[mask].max() <= max(d[~mask].max(), 1)


def test_seam_check_catches_tiling_without_context(models):
    """The check above can fail: with no overlap, tile edges lack context and show."""
    path = str(models["compact"])
    f = frame(48, 64)
    whole = load_upscaler(path, device="cpu", tile=256).upscale([f])[0]
    tiled = load_upscaler(path, device="cpu", tile=32, overlap=0).upscale([f])[0]
    d = diff(whole, tiled)
    mask = border_mask(f.shape, 32, 0, 2)
    assert d[mask].max() > 5
    assert d[~mask].max() <= 1


def test_batch_of_mixed_sizes_matches_one_by_one(models):
    path = str(models["compact"])
    frames = [frame(48, 64, 1), frame(64, 48, 2), frame(48, 64, 3), frame(20, 30, 4)]
    batched = load_upscaler(path, device="cpu", tile=32, overlap=8, batch=4).upscale(frames)
    single = load_upscaler(path, device="cpu", tile=256, batch=1)
    for f, out in zip(frames, batched, strict=True):
        assert out.shape == (f.shape[0] * 2, f.shape[1] * 2, 3)
        assert diff(out, single.upscale([f])[0]).max() <= 1
    assert load_upscaler(path, device="cpu").upscale([]) == []


def test_deterministic(models):
    up = load_upscaler(str(models["compact"]), device="cpu", tile=32, overlap=8, batch=3)
    frames = [frame(48, 64, 5), frame(48, 64, 6)]
    first, second = up.upscale(frames), up.upscale(frames)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)


def test_rejects_bad_frames_and_settings(models):
    up = load_upscaler(str(models["compact"]), device="cpu")
    with pytest.raises(ValueError, match="RGB uint8"):
        up.upscale([frame(8, 8).astype(np.float32)])
    with pytest.raises(ValueError, match="RGB uint8"):
        up.upscale([np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(ValueError, match="overlap"):
        load_upscaler(str(models["compact"]), tile=32, overlap=16)


# --- Availability -----------------------------------------------------------------------


class WritesMarker:
    """A pickle payload that creates a file when unpickled (stands in for any code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def unavailable_reason(path):
    result = availability(str(path))
    assert result["available"] is False and result["model"] is None
    with pytest.raises(UpscalerUnavailable) as exc:
        load_upscaler(str(path), device="cpu")
    assert exc.value.reason == result["reason"]
    return result["reason"]


def test_unavailable_without_setting(settings):
    settings.UPSCALE_MODEL_PATH = ""
    assert availability() == {
        "available": False,
        "reason": "AI upscaling is not configured (UPSCALE_MODEL_PATH is not set)",
        "model": None,
    }


def test_unavailable_missing_file(tmp_path):
    assert "model file not found" in unavailable_reason(tmp_path / "nope.pth")


def test_unavailable_other_extension(tmp_path, models):
    pt = tmp_path / "model.pt"  # TorchScript would be code: refused even if present
    pt.write_bytes(models["compact"].read_bytes())
    assert "use a .pth or .safetensors file" in unavailable_reason(pt)


def test_unavailable_text_file(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a model\n")
    assert "could not read notes.pth as a weights-only model file" in unavailable_reason(text)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save({"params": WritesMarker(marker)}, evil)
    else:
        with open(evil, "wb") as f:
            pickle.dump({"params": WritesMarker(marker)}, f)
    assert "could not read evil.pth as a weights-only model file" in unavailable_reason(evil)
    assert not marker.exists()
    # The payload is live: an unrestricted load does run it.
    if writer == "torch.save":
        torch.load(evil, weights_only=False)
    else:
        with open(evil, "rb") as f:
            pickle.load(f)
    assert marker.exists()


def test_unavailable_1x_model(models):
    reason = unavailable_reason(models["restore"])
    assert reason == (
        "compact-x1.pth is a 1x RealESRGAN Compact Restoration model, "
        "not a super-resolution (2x or more) model"
    )


def test_unavailable_unknown_weights(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(3, 3)}, path)
    assert unavailable_reason(path) == "other.pth: unsupported model architecture"


def test_available_good_file_and_cached(models, settings):
    settings.UPSCALE_MODEL_PATH = str(models["compact"])
    result = availability()
    assert result == {
        "available": True,
        "reason": "2x RealESRGAN Compact model compact-x2.pth",
        "model": {
            "name": "compact-x2.pth",
            "architecture": "RealESRGAN Compact",
            "scale": 2,
            "tags": ["8nf", "2nc"],
        },
    }
    assert availability(str(models["esrgan"]))["model"]["scale"] == 4


def test_availability_follows_file_changes(tmp_path):
    path = tmp_path / "swap.pth"
    torch.save(compact(2).state_dict(), path)
    assert availability(str(path))["available"] is True
    torch.save(compact(1).state_dict(), path)
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    assert availability(str(path))["available"] is False


# --- Importing spandrel with and without a working torchvision --------------------------

SUBPROCESS_CHECK = """
import json, os, sys, types
sys.path.insert(0, {repo!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "reeleditor.settings"
{setup}
import numpy as np
from exports.upscale import load_upscaler
up = load_upscaler({model!r}, device="cpu", tile=32, overlap=8)
out = up.upscale([np.zeros((48, 64, 3), np.uint8)])[0]
import spandrel.architectures.LaMa.__arch.LaMa as lama
print(json.dumps({{
    "shape": out.shape,
    "torchvision": repr(sys.modules.get("torchvision", "absent")),
    "lama_rotate": lama.rotate.__module__ + "." + lama.rotate.__qualname__,
}}))
"""

IMPORT_RAISES = """
import tempfile
# A torchvision that fails while importing, as the CUDA-built wheel does on CPU torch.
fake_site = tempfile.mkdtemp()
os.mkdir(os.path.join(fake_site, "torchvision"))
with open(os.path.join(fake_site, "torchvision", "__init__.py"), "w") as f:
    f.write("raise RuntimeError('operator torchvision::nms does not exist')")
sys.path.insert(0, fake_site)
"""

NOT_INSTALLED = 'sys.modules["torchvision"] = None  # import raises ModuleNotFoundError'

WORKING = """
def fake_rotate(*args, **kwargs): pass
tv = types.ModuleType("torchvision")
tv.transforms = types.ModuleType("torchvision.transforms")
tv.transforms.functional = fn = types.ModuleType("torchvision.transforms.functional")
fn.InterpolationMode, fn.rotate, fn.normalize = object(), fake_rotate, fake_rotate
for m in (tv, tv.transforms, fn):
    sys.modules[m.__name__] = m
"""


def run_isolated(setup, model):
    code = SUBPROCESS_CHECK.format(repo=str(REPO), setup=textwrap.dedent(setup), model=model)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("setup", [IMPORT_RAISES, NOT_INSTALLED], ids=["raises", "missing"])
def test_spandrel_imports_when_torchvision_fails(models, setup):
    result = run_isolated(setup, str(models["compact"]))
    assert result["shape"] == [96, 128, 3]
    # The stand-in served spandrel's import only; the process sees what it saw before.
    assert result["torchvision"] in ("'absent'", "None")
    assert result["lama_rotate"].startswith("exports.upscale._torchvision_stand_in")


def test_working_torchvision_is_used_as_is(models):
    result = run_isolated(WORKING, str(models["compact"]))
    assert result["shape"] == [96, 128, 3]
    assert result["torchvision"].startswith("<module 'torchvision'")
    assert result["lama_rotate"] == "__main__.fake_rotate"
