"""Serve the app with several daphne processes on one port and one data folder.

    python -m reeleditor.serve --bind 0.0.0.0:8000 --processes 2

One Python process uses one core at most, so a machine with more cores serves more
users with more processes. The parent opens one listening socket per child on the same
port with ``SO_REUSEPORT`` (the kernel spreads new connections across them by their
address, not by which process wakes first) and starts each child with its socket
(``daphne --fd``). The children share the data folder: the user's write lease (a file
lock, then the claim in the central database) and the copy lock already serialise
writers across processes, and each child runs the retry loop for the copies there.

Choosing ``--processes``: one per core the web tier may use. On a machine that also runs
the export workers, PostgreSQL or Redis, leave them a core: ``auto`` (what ``make run``
uses) is one per core but one, at least 2. More processes than cores only adds
switching; ``bench/load.py`` measures the curve.

WebSockets: with Redis (``REDIS_URL``) an export's progress reaches a watcher on any
process through the channel layer. Without it (the embedded default) each process has
its own in-memory layer, and a watcher connected to another process than the export's
follows the job row instead (``exports/consumers.py``), about once a second.

A child that exits is started again (at most once a second); SIGTERM or SIGINT stops
them all and waits for them.
"""

import argparse
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger("reeleditor.serve")

RESTART_PAUSE = 1.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other sockets may share (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the supervisor dies, however it dies (a
    killed supervisor must not leave processes that hold the port and the data folder)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not Linux: the supervisor's SIGTERM handler still stops them
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def daphne_command(fd: int, access_log: Path | None, extra: list[str]) -> list[str]:
    command = [sys.executable, "-m", "daphne", "--fd", str(fd)]
    # daphne refuses a WebSocket whose handshake takes over 5 s by default: on a loaded
    # instance (the other one just died) export watchers were refused in bursts.
    command += ["--websocket_connect_timeout", "30"]
    if access_log is not None:
        command += ["--access-log", str(access_log)]
    return [*command, *extra, "reeleditor.asgi:application"]


class Child:
    def __init__(self, number: int, sock: socket.socket, log_dir: Path | None, extra):
        self.number, self.sock, self.log_dir, self.extra = number, sock, log_dir, extra
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> None:
        access_log = self.log_dir / f"web-{self.number}.access.log" if self.log_dir else None
        env = {**os.environ, "REELEDITOR_WEB_PROCESS": str(self.number)}
        self.process = subprocess.Popen(
            daphne_command(self.sock.fileno(), access_log, self.extra),
            pass_fds=(self.sock.fileno(),),
            env=env,
            preexec_fn=_die_with_parent,
        )
        self.started_at = time.monotonic()
        logger.info("web process %s started (pid %s)", self.number, self.process.pid)

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)


def serve(host: str, port: int, processes: int, log_dir: Path | None, extra) -> int:
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    children = [
        Child(n, listening_socket(host, port), log_dir, extra) for n in range(1, processes + 1)
    ]
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.start()
    print(f"serving on http://{host}:{port} with {processes} processes", flush=True)
    try:
        while not stopping:
            for child in children:
                if child.exited() and not stopping:
                    logger.warning(
                        "web process %s exited with %s; starting it again",
                        child.number,
                        child.process.returncode,
                    )
                    time.sleep(max(0.0, RESTART_PAUSE - (time.monotonic() - child.started_at)))
                    child.start()
            time.sleep(0.2)
    finally:
        for child in children:
            child.stop()
        deadline = time.monotonic() + 20
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.stop(signal.SIGKILL)
                child.process.wait()
    return 0


def default_processes() -> int:
    """One per core, leaving one to the database and the workers; at least 2."""
    return max(2, (os.cpu_count() or 2) - 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", default="127.0.0.1:8000", help="host:port (default %(default)s)")
    parser.add_argument(
        "--processes", default="auto", help="a number, or auto (one per core but one, >= 2)"
    )
    parser.add_argument("--log-dir", type=Path, help="one access log per process here")
    parser.add_argument("daphne_args", nargs="*", help="passed to each daphne (after --)")
    args = parser.parse_args(argv)
    processes = default_processes() if args.processes == "auto" else int(args.processes)
    if processes < 1:
        parser.error("--processes must be at least 1")
    host, _, port = args.bind.rpartition(":")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return serve(host.strip("[]") or "127.0.0.1", int(port), processes, args.log_dir,
                 args.daphne_args)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
