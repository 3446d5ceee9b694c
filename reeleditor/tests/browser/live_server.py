"""A live app for the browser tests: a ``daphne`` process, as in production.

pytest-django's ``live_server`` is a WSGI server (no WebSockets, and export progress
arrives over a WebSocket), so the pages are served by a real ``daphne`` process running
``reeleditor.asgi:application`` with its own environment: its own data folder, central
SQLite database (migrated first) and bucket, reached through an ``S3Proxy``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from reeleditor.localcluster.processes import free_port, http_answers
from syncstore.tests.helpers import run_manage, start_daphne

from .s3_proxy import S3Proxy

ROOT = Path(__file__).resolve().parents[3]
SERVER_START_TIMEOUT = 60.0


class LiveServer:
    """A daphne process serving the app, with its own data folder, database and bucket."""

    def __init__(
        self, name: str, workdir: Path, *, export_mode: str, proxy: S3Proxy, bucket, extra_env=None
    ):
        """``extra_env``: settings of this server only (``UPSCALE_MODEL_PATH``...), applied
        after the ones every test server gets."""
        self.name = name
        self.extra_env = dict(extra_env or {})
        self.workdir = workdir
        self.proxy = proxy
        self.bucket = bucket
        self.export_mode = export_mode
        self.data_dir = workdir / "data"
        self.log_path = workdir / "daphne.log"
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.env = self._environment()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            # The developer's shell must not configure the server under test.
            if not name.startswith(
                ("AWS_", "S3_", "SNAPSHOT_", "EXPORT_", "DJANGO_", "SYNC_", "LEASE_", "UPSCALE_")
            )
            and name not in ("DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS")
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
                "PYTHONUNBUFFERED": "1",
                "REELEDITOR_DATA_DIR": str(self.data_dir),
                "DATABASE_URL": f"sqlite:///{self.workdir / 'central.sqlite3'}",
                "EXPORT_MODE": self.export_mode,
                "EXPORT_PRESET": "ultrafast",
                "DJANGO_DEBUG": "true",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SYNC_RETRY_INTERVAL": "0",
                # Every test signs up from 127.0.0.1 on the session's servers.
                "SIGNUP_LIMIT": "10000",
                "S3_BUCKET": self.bucket,
                "S3_ENDPOINT_URL": self.proxy.url,
                "S3_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "SNAPSHOT_CONNECT_TIMEOUT": "1",
                "SNAPSHOT_READ_TIMEOUT": "2",
            }
        )
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, extra_env=None, check=True) -> subprocess.CompletedProcess:
        """Run ``manage.py`` with this server's environment (its database, its bucket)."""
        return run_manage(*args, env={**self.env, **(extra_env or {})}, cwd=ROOT, check=check)

    def create_user(self, username: str, password: str, staff: bool = False) -> int:
        """Create a user in this server's central database; returns its id."""
        code = (
            "import os\n"
            "from django.contrib.auth import get_user_model\n"
            "user = get_user_model().objects.create_user(\n"
            "    os.environ['BT_USERNAME'], password=os.environ['BT_PASSWORD'])\n"
            "user.is_staff = user.is_superuser = os.environ['BT_STAFF'] == '1'\n"
            "user.save()\n"
            "print('user-id', user.pk)\n"
        )
        result = self.manage(
            "shell",
            "-c",
            code,
            extra_env={
                "BT_USERNAME": username,
                "BT_PASSWORD": password,
                "BT_STAFF": "1" if staff else "0",
            },
        )
        match = re.search(r"user-id (\d+)", result.stdout)
        if not match:
            raise RuntimeError(f"no user id in: {result.stdout!r} {result.stderr[-2000:]!r}")
        return int(match[1])

    def start(self) -> LiveServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput")
        for _attempt in range(3):
            self.port = free_port()
            self.process = start_daphne(
                self.port,
                env=self.env,
                cwd=ROOT,
                log_path=self.log_path,
                banner=f"--- {self.name}: daphne on port {self.port}",
            )
            if self._wait_until_up():
                return self
            self.stop()
        raise RuntimeError(f"daphne ({self.name}) did not start:\n{self.log_tail()}")

    def _wait_until_up(self) -> bool:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # died, most likely the port was taken meanwhile
            if http_answers(self.url + "/accounts/login/", timeout=2):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"
