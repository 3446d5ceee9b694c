"""Child processes of the local cluster: start, wait until ready, stop, kill, pause.

Each service runs in its own process group (``start_new_session``), so stopping or
killing it takes its children too (a Celery worker's pool, nginx's workers), as when
the machine it stands for goes away. Output goes to ``<name>.log``: an unread pipe
would fill up and block the service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


class ServiceFailed(RuntimeError):
    """A service exited or did not become ready; the message carries its log's tail."""


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_answers(url: str, timeout: float = 1.0) -> bool:
    """True when something answers HTTP at ``url``, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def free_port() -> int:
    """A local TCP port nothing listens on right now (it can be taken before it is used)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """One long-running process of the cluster.

    ``ready`` is a check (no arguments, True when the service answers) used by
    ``wait_ready``; the default waits for ``port`` to accept connections.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        workdir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        port: int | None = None,
        ready: Callable[[], bool] | None = None,
    ):
        self.name = name
        self.command = command
        self.workdir = Path(workdir)
        self.env = env
        self.cwd = cwd
        self.port = port
        self._ready = ready or (lambda: port is not None and port_answers(port))
        self.log_path = self.workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._log_start = 0  # where this start's output begins in the log

    def __repr__(self):
        state = f"pid {self.pid}" if self.alive else "stopped"
        return f"<Service {self.name} {state}>"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> Service:
        """Start the process and wait until it is ready."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            banner = f"\n--- {self.name}: start #{self.starts}: {' '.join(self.command)}\n"
            log.write(banner.encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> Service:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceFailed(
                    f"{self.name} exited ({self.process.returncode}) while starting:\n"
                    + self.log_tail()
                )
            if self._ready():
                return self
            time.sleep(0.1)
        self.kill()
        raise ServiceFailed(f"{self.name} was not ready in {timeout:.0f} s:\n{self.log_tail()}")

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the whole group, then SIGKILL after ``timeout``."""
        if not self.alive:
            return
        self._signal_group(signal.SIGCONT)  # a paused service cannot handle SIGTERM
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._signal_group(signal.SIGKILL)  # children that outlived their parent

    def kill(self) -> None:
        """SIGKILL to the whole group: the machine it stands for loses power."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: it accepts nothing and answers nothing (a network cut)."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def restart(self, *, kill: bool = False, timeout: float = 60.0) -> Service:
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)

    def log_since_start(self) -> str:
        """What the process wrote since it was last started (readiness checks)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_start)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"


class MotoServer(Service):
    """moto's S3 server on 127.0.0.1 (a free port unless given): the cluster's store, and
    the benchmarks' and tests' real S3 endpoint."""

    def __init__(self, workdir: Path, port: int | None = None, *, name="s3", env=None):
        port = port or free_port()
        super().__init__(
            name,
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            workdir=workdir,
            env=env,
            port=port,
            ready=lambda: http_answers(f"http://127.0.0.1:{port}/moto-api/"),
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def stop_process_group(pid: int, timeout: float = 20.0) -> bool:
    """Stop a group started by an earlier ``up`` (we are not its parent); True if it ran."""
    try:
        os.killpg(pid, signal.SIGCONT)
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True
