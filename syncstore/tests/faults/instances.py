"""Real app processes for fault tests, and an HTTP client that signs in to them.

An ``AppInstance`` is a ``daphne`` process serving ``reeleditor.asgi:application`` with
the environment a deployment would give it: its own ``REELEDITOR_DATA_DIR`` (its
machine's disk: working copies, leases, media cache), a ``DATABASE_URL`` shared with
the other instances (the central database), and the S3 bucket behind the test's fault
proxy. It can be killed with SIGKILL (a machine that dies), terminated, and restarted
on the same data folder (the machine comes back).

``ApiClient`` signs in the way a browser does (``/accounts/login/`` with the form's
CSRF token; the session lives in the central database, so it is valid on every
instance) and calls the JSON API with ``X-CSRFToken``.

Output of each process goes to ``<workdir>/<name>.log`` (``log_tail()``); the faults
conftest adds those tails to the report of a failing test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from reeleditor.localcluster.cluster import clean_environment
from reeleditor.localcluster.processes import free_port
from syncstore.tests.helpers import run_manage, start_daphne

# FAULT_APP_ROOT: run the instances from another checkout (to show a suite fails on an
# older release); the test process itself always runs this tree.
ROOT = Path(os.environ.get("FAULT_APP_ROOT") or Path(__file__).resolve().parents[3])
START_TIMEOUT = 60.0


def base_environment(database_url: str, data_dir: Path | str) -> dict[str, str]:
    """The environment of an app process (or ``manage.py``) on ``database_url``."""
    env = clean_environment()  # the developer's shell must not configure them
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
            "PYTHONUNBUFFERED": "1",
            "REELEDITOR_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "true",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
    )
    return env


def manage(
    database_url: str,
    *args: str,
    env: dict[str, str] | None = None,
    data_dir: Path | str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``manage.py`` against ``database_url`` (a throwaway data folder unless given)."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="manage-"))
        full_env = {**base_environment(database_url, data_dir), **(env or {})}
        return run_manage(*args, env=full_env, cwd=ROOT, check=check)


def migrate(database_url: str) -> None:
    """``manage.py migrate --noinput`` on the central database at ``database_url``."""
    manage(database_url, "migrate", "--noinput")


_CREATE_USERS = """
import json, os
from django.contrib.auth import get_user_model
User = get_user_model()
ids = {}
for spec in json.loads(os.environ["FAULT_USERS"]):
    user = User.objects.create_user(spec["username"], password=spec["password"])
    if spec.get("staff"):
        user.is_staff = user.is_superuser = True
        user.save()
    ids[spec["username"]] = user.pk
print("user-ids", json.dumps(ids))
"""


def create_users(database_url: str, *users: tuple[str, str] | dict) -> dict[str, int]:
    """Create users in the central database, in one ``manage.py`` run; ``{name: id}``.

    Each user is ``(username, password)`` or ``{"username", "password", "staff"}``.
    """
    import json

    specs = [
        user if isinstance(user, dict) else {"username": user[0], "password": user[1]}
        for user in users
    ]
    result = manage(
        database_url, "shell", "-c", _CREATE_USERS, env={"FAULT_USERS": json.dumps(specs)}
    )
    match = re.search(r"^user-ids (.*)$", result.stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no user ids in: {result.stdout!r} {result.stderr[-2000:]!r}")
    return json.loads(match[1])


def create_user(database_url: str, username: str, password: str, staff: bool = False) -> int:
    spec = {"username": username, "password": password, "staff": staff}
    return create_users(database_url, spec)[username]


class AppInstance:
    """One app process (daphne) with its own data folder, on a shared central database.

    ``workdir`` holds ``data/`` (``REELEDITOR_DATA_DIR``) and ``<name>.log``. Settings:
    ``S3_ENDPOINT_URL`` is ``s3_endpoint_url`` (the fault proxy), short snapshot timeouts
    (connect 1 s, read 3 s) so a cut store fails fast, ``EXPORT_MODE=mock``, and
    ``SYNC_RETRY_INTERVAL`` (0: no periodic retry, the embedded test default).
    ``extra_env`` wins over all of these.
    """

    def __init__(
        self,
        name: str,
        workdir: Path,
        *,
        database_url: str,
        s3_endpoint_url: str | None,
        bucket: str | None,
        sync_retry_interval: int = 0,
        extra_env: dict[str, str] | None = None,
        processes: int = 1,
    ):
        self.name = name
        self.processes = processes  # >1: several daphne behind one port (reeleditor.serve)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / f"{name}.log"
        self.database_url = database_url
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.starts = 0  # how many times a process was started (restarts count)
        self.env = base_environment(database_url, self.data_dir)
        self.env.update(
            {
                "EXPORT_MODE": "mock",
                "EXPORT_PRESET": "ultrafast",
                "SYNC_RETRY_INTERVAL": str(sync_retry_interval),
                "SNAPSHOT_CONNECT_TIMEOUT": "1",
                "SNAPSHOT_READ_TIMEOUT": "3",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        if bucket:
            self.env.update(
                {
                    "S3_BUCKET": bucket,
                    "S3_ENDPOINT_URL": s3_endpoint_url or "",
                    "S3_REGION": "us-east-1",
                }
            )
        self.env.update(extra_env or {})

    def __repr__(self):
        state = f"pid {self.pid}" if self.alive else "stopped"
        return f"<AppInstance {self.name} {self.url if self.port else '(no port)'} {state}>"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"instance {self.name} was never started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # --- Life cycle ------------------------------------------------------------------

    def launch(self) -> AppInstance:
        """Start the process without waiting for it (see ``wait_until_up``)."""
        if self.alive:
            raise RuntimeError(f"instance {self.name} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The same port again on a restart, so clients and URLs stay valid; a new one
        # the first time, or when that port was taken meanwhile.
        if self.port is None:
            self.port = free_port()
        self.starts += 1
        self.process = start_daphne(
            self.port,
            env=self.env,
            cwd=ROOT,
            log_path=self.log_path,
            banner=f"\n--- {self.name}: start #{self.starts}, daphne on port {self.port}",
            processes=self.processes,
        )
        return self

    def wait_until_up(self, timeout: float = START_TIMEOUT) -> AppInstance:
        """Wait until the process answers HTTP; raises with the log tail if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"instance {self.name} exited ({self.process.returncode}) while starting:"
                    f"\n{self.log_tail()}"
                )
            if self.answers():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"instance {self.name} did not answer in {timeout}s:\n{self.log_tail()}")

    def start(self, timeout: float = START_TIMEOUT) -> AppInstance:
        """Start the process and wait until it answers HTTP."""
        for attempt in range(3):
            self.launch()
            try:
                return self.wait_until_up(timeout)
            except RuntimeError:
                # Most likely the port was taken between choosing and binding it.
                if attempt == 2 or "Address already in use" not in self.log_tail(3000):
                    raise
                self.port = None
        raise AssertionError("unreachable")

    def answers(self, timeout: float = 1.0) -> bool:
        """True when the process answers HTTP (any status) on its port."""
        try:
            requests.get(self.url + "/accounts/login/", timeout=timeout, allow_redirects=False)
        except requests.RequestException:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as with a machine that loses power."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``)."""
        if not self.alive:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, *, kill: bool = False, timeout: float = START_TIMEOUT) -> AppInstance:
        """Start again on the same data folder (and port); a running one is stopped first
        (SIGTERM, or SIGKILL with ``kill=True``)."""
        if kill:
            self.kill()
        else:
            self.terminate()
        return self.start(timeout)

    # --- Tools -----------------------------------------------------------------------

    def manage(self, *args: str, env=None, check: bool = True) -> subprocess.CompletedProcess:
        """``manage.py`` with this instance's environment and data folder (its machine)."""
        return manage(
            self.database_url,
            *args,
            env={**self.env, **(env or {})},
            data_dir=self.data_dir,
            check=check,
        )

    def create_user(self, username: str, password: str, staff: bool = False) -> int:
        return create_user(self.database_url, username, password, staff)

    def client(self, username: str | None = None, password: str | None = None) -> ApiClient:
        """A new HTTP client on this instance, signed in when credentials are given."""
        client = ApiClient(self)
        if username is not None:
            client.login(username, password)
        return client

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"


@dataclass
class ApiResponse:
    """An API answer; unpacks as ``status, headers, body = response``."""

    status: int
    headers: dict[str, str]  # case-insensitive (requests' CaseInsensitiveDict)
    json: object  # the parsed body, None when it is not JSON
    text: str = field(default="", repr=False)

    def __iter__(self):
        return iter((self.status, self.headers, self.json))

    @property
    def sync(self) -> str | None:
        """The ``X-Sync-Status`` header."""
        return self.headers.get("X-Sync-Status")


class ApiClient:
    """A browser-like HTTP client for one instance: session cookie, CSRF token, JSON.

    It follows the instance (its current URL) across restarts; the session cookie is
    valid on every instance that shares the central database (``on(other)``).
    """

    def __init__(self, instance: AppInstance, *, timeout: float = 30.0):
        self.instance = instance
        self.timeout = timeout
        self.session = requests.Session()
        self.username: str | None = None

    def __repr__(self):
        return f"<ApiClient {self.username or '(anonymous)'} on {self.instance.name}>"

    def on(self, instance: AppInstance) -> ApiClient:
        """A client on another instance with this one's cookies (the same session)."""
        other = ApiClient(instance, timeout=self.timeout)
        other.session.cookies.update(self.session.cookies)
        other.username = self.username
        return other

    def login(self, username: str, password: str) -> ApiClient:
        """Sign in through ``/accounts/login/`` with the form's CSRF token."""
        url = self.instance.url + "/accounts/login/"
        page = self.session.get(url, timeout=self.timeout)
        page.raise_for_status()
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if not match:
            raise RuntimeError(f"no CSRF token in the login form of {self.instance.name}")
        response = self.session.post(
            url,
            data={
                "csrfmiddlewaretoken": match[1],
                "username": username,
                "password": password,
                "next": "",
            },
            headers={"Referer": url},
            allow_redirects=False,
            timeout=self.timeout,
        )
        # Success redirects; a failed sign-in shows the form again (200).
        if response.status_code != 302 or "sessionid" not in self.session.cookies:
            raise RuntimeError(
                f"sign-in of {username!r} on {self.instance.name} failed: "
                f"{response.status_code} {response.text[:500]!r}"
            )
        self.username = username
        return self

    def request(self, method: str, path: str, json=None, **kwargs) -> ApiResponse:
        """One request (JSON body when ``json`` is given); never raises for a status."""
        headers = dict(kwargs.pop("headers", None) or {})
        token = self.session.cookies.get("csrftoken")
        if token and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            headers.setdefault("X-CSRFToken", token)
        response = self.session.request(
            method,
            self.instance.url + path,
            json=json,
            headers=headers,
            timeout=kwargs.pop("timeout", self.timeout),
            allow_redirects=kwargs.pop("allow_redirects", False),
            **kwargs,
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        return ApiResponse(response.status_code, response.headers, body, response.text)

    def get(self, path: str, **kwargs) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs) -> ApiResponse:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json=None, **kwargs) -> ApiResponse:
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json=None, **kwargs) -> ApiResponse:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs) -> ApiResponse:
        return self.request("DELETE", path, **kwargs)

    def sync_status(self) -> dict:
        """``GET /api/sync/status`` (asserts a 200)."""
        response = self.get("/api/sync/status")
        if response.status != 200:
            raise AssertionError(f"sync status on {self.instance.name}: {response}")
        return response.json
