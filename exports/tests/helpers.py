"""Plain helpers of the exports tests (fixtures are in ``conftest.py``)."""

import json
import shutil
import subprocess

import pytest
from channels.testing import WebsocketCommunicator

from reeleditor.asgi import application


def export_socket(job_id, client=None) -> WebsocketCommunicator:
    """The export progress WebSocket of ``job_id``, with ``client``'s session cookie
    (a signed-in test ``Client``; None: nobody signed in), as a browser opens it."""
    headers = [(b"origin", b"http://localhost")]
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, f"/ws/exports/{job_id}/", headers=headers)


def run_node_check(tmp_path, js_module, check_script: str, *args) -> dict:
    """Run ``check_script`` under node with the ES module ``js_module``; its JSON report.

    The script gets the module's file URL, then ``args``, on its command line. Fails
    when node is not installed: a skip would leave the editor's JS unchecked unnoticed
    (``make test`` installs it, through scripts/test-services.sh).
    """
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            f"node is not on PATH, so {js_module.name} cannot be checked: "
            "install it with `bash scripts/test-services.sh node` (Debian's nodejs)"
        )
    # An .mjs copy, so node loads it as an ES module whatever package.json says.
    module = tmp_path / f"{js_module.stem}.mjs"
    shutil.copyfile(js_module, module)
    script = tmp_path / "check.mjs"
    script.write_text(check_script)
    result = subprocess.run(
        [node, str(script), module.as_uri(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
