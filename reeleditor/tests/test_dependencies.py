"""The web app and plain exports need none of the AI upscaling stack.

requirements.txt (the web image, ``make run``) leaves out torch, torchvision and
spandrel; requirements-upscale.txt adds them where upscaling runs. This runs the app in
a process where those packages cannot be imported, as on a machine without them.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_WITHOUT_TORCH = r"""
import importlib.abc, os, sys, tempfile

class Missing(importlib.abc.MetaPathFinder):
    BLOCKED = ("torch", "torchvision", "spandrel", "safetensors")
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Missing())
os.environ["REELEDITOR_DATA_DIR"] = tempfile.mkdtemp()
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reeleditor.settings")
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
import exports.runner, exports.upscale, reeleditor.asgi, reeleditor.urls  # noqa
from django.test import Client
assert Client().get("/accounts/login/").status_code == 200
model = os.path.join(os.environ["REELEDITOR_DATA_DIR"], "model.pth")
open(model, "wb").write(b"not read without torch")
info = exports.upscale.availability(model)
assert info["available"] is False, info
print(info["reason"])
assert "torch" not in sys.modules
"""


def test_the_app_runs_without_the_upscaling_stack():
    # Its own embedded central database, whatever the suite runs on.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "requirements-upscale.txt" in result.stdout
