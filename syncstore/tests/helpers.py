"""Plain helpers the syncstore tests share (and, for processes, the other apps' tests too).

Fixtures live elsewhere: the object-store fixtures in ``fixtures.py`` (a plugin, for every
app), the syncstore tests' own in ``conftest.py``.
"""

import queue
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from django.db import connections

from projects.models import Project
from projects.tests.helpers import create_project
from syncstore import sync, userdb, workingcopy
from syncstore.binding import bound_to_user
from syncstore.models import SyncState

MANAGE_TIMEOUT = 120.0

# --- The registry and a user's data ----------------------------------------------------


def registry(user) -> SyncState | None:
    """The registry row of ``user`` (a user or a user id); None before its first commit."""
    return SyncState.objects.filter(user_id=getattr(user, "pk", user)).first()


def project_names(user) -> list[str]:
    """The names of ``user``'s projects in this machine's working copy, sorted."""
    with bound_to_user(user.pk):
        return sorted(Project.objects.values_list("name", flat=True))


def create_project_in_copy(user, name) -> None:
    """Create a project straight in ``user``'s working copy: no request, no push."""
    with bound_to_user(user.pk):
        Project.objects.create(name=name, aspect_ratio="9:16")


def write_without_push(user, name) -> None:
    """A write that reaches the working copy but no snapshot (as from a shell)."""
    create_project_in_copy(user, name)
    assert workingcopy.read_state(user.pk).dirty


@contextmanager
def committed_database(row, tmp_path):
    """Committed version ``row.version`` as the store holds it (its image and segments,
    assembled as a new machine would; never this machine's copy): a sqlite3 connection."""
    image = tmp_path / f"committed-{uuid.uuid4().hex}.sqlite3"
    sync._download(row.user_id, row, image)
    conn = sqlite3.connect(image)
    try:
        yield conn
    finally:
        conn.close()
        image.unlink(missing_ok=True)


def snapshot_names(row, tmp_path) -> list[str]:
    """The project names in committed version ``row``, oldest first."""
    with committed_database(row, tmp_path) as conn:
        query = "SELECT name FROM projects_project ORDER BY created_at, id"
        return [name for (name,) in conn.execute(query)]


def committed_ids(user, table: str, tmp_path, *, version: int | None = None) -> set[int]:
    """The ids in ``table`` of ``user``'s committed ``version`` (default: the version the
    registry names now), read from the store."""
    row = registry(user)
    assert row is not None and row.version > 0, f"nothing committed for {user}"
    if version is not None:
        assert version <= row.version, (version, row.version)
        row = SyncState(user_id=row.user_id, version=version)  # found by its history row
    with committed_database(row, tmp_path) as conn:
        return {id_ for (id_,) in conn.execute(f'SELECT id FROM "{table}"')}


# --- Machines --------------------------------------------------------------------------


def new_machine(data_dir) -> None:
    """Forget everything this machine had: working copies, state, open aliases.

    Media files stay: they are not in the working copies.
    """
    userdb.forget_all()
    shutil.rmtree(data_dir / "users", ignore_errors=True)


def another_machine_commits(user, client, tmp_path, name) -> None:
    """Another machine commits ``name``; this machine's copy stays one version behind.

    The copy is set aside, ``name`` is created (and committed) through ``client``, and the
    copy set aside is put back.
    """
    aside = Path(tempfile.mkdtemp(prefix=f"this-machine-{user.pk}-", dir=tmp_path)) / "copy"
    userdb.forget_all()
    shutil.copytree(userdb.user_dir(user.pk), aside)
    create_project(client, name)
    userdb.forget_all()
    shutil.rmtree(userdb.user_dir(user.pk))
    shutil.copytree(aside, userdb.user_dir(user.pk))


# --- Threads ---------------------------------------------------------------------------


def in_thread(fn, *args, name: str = "helper", **kwargs) -> Future:
    """Run ``fn`` in a new bare thread (a fresh context: no binding, tracker or lease)."""
    future = Future()

    def run():
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        finally:
            connections.close_all()  # this thread's own connections

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


# --- Processes and ports ---------------------------------------------------------------


def start_daphne(
    port: int, *, env, cwd, log_path, banner: str, processes: int = 1
) -> subprocess.Popen:
    """Start ``daphne`` serving ``reeleditor.asgi:application`` on 127.0.0.1:``port``
    (with ``processes`` > 1, that many behind one port: ``reeleditor.serve``, with one
    access log per process in ``<log_path's folder>/access/``).

    ``banner`` is written to ``log_path`` first, then the process's output goes there.
    """
    if processes > 1:
        command = [sys.executable, "-m", "reeleditor.serve", "--bind", f"127.0.0.1:{port}"]
        command += ["--processes", str(processes), "--log-dir", str(log_path.parent / "access")]
    else:
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        command.append("reeleditor.asgi:application")
    with open(log_path, "ab") as log:
        log.write(f"{banner}\n".encode())
        log.flush()
        # Output goes to a file: an unread pipe fills up and blocks the server.
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def run_manage(*args: str, env, cwd, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``<cwd>/manage.py`` with exactly the environment ``env``, its output captured.

    With ``check``, a failure raises ``RuntimeError`` with the tail of its output.
    """
    result = subprocess.run(
        [sys.executable, str(Path(cwd) / "manage.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=MANAGE_TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return result


class LineProcess:
    """A child process that talks in lines: commands on its stdin, answers on its stdout.

    Its stderr goes to ``log_path`` (``log()``: the tail). A reader thread queues what it
    prints, so a wedged child fails the test (``next_line`` times out) instead of hanging
    it. Subclasses say how it stops; ``close()`` releases the pipes and the log.
    """

    def __init__(self, command, *, env, cwd, log_path):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)  # the process ended

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def next_line(self, timeout: float) -> str | None:
        """The next line it printed; None when it ended or said nothing in ``timeout`` s."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if not stream.closed:
                stream.close()
        self._log.close()
