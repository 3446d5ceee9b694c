"""Simulated users of the load and fault suite, and the ledger of what they were told.

A ``SimulatedUser`` signs in through the cluster's entry point and, until told to stop,
mixes what a coach does in a session: opens pages, lists projects, autosaves crop
keyframes, creates projects, uploads clips, and exports (each export watched over a
real WebSocket by its own thread, retried when it fails retryably, as the export panel
offers). The entry point spreads the requests over the web instances.

Every write carries something unique, so what is committed at the end can be matched
to the answers: a project's name, a clip's name, and for an autosave a sequence number
encoded in the first keyframe's ``x`` (``seq * 0.25`` pixels).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests
from websockets.exceptions import InvalidHandshake, WebSocketException
from websockets.sync.client import connect

from syncstore.tests.faults.instances import ApiClient, ApiResponse

# Clip size of the suite (write_game_clip) and the 9:16 window on it.
CLIP_WIDTH, CLIP_HEIGHT = 320, 180
WINDOW_WIDTH = CLIP_HEIGHT * 9 / 16
TERMINAL = ("complete", "error", "cancelled")


@dataclass
class Target:
    """What ``ApiClient`` talks to: here the entry point, not one instance."""

    url: str
    name: str = "entry"


def keyframes_for(seq: int) -> list[dict]:
    """Crop keyframes whose first ``x`` says which autosave wrote them."""
    x = seq * 0.25
    if x + WINDOW_WIDTH > CLIP_WIDTH:
        raise ValueError(f"autosave {seq} does not fit the clip")
    first = {"time": 0.0, "x": x, "y": 0.0, "width": WINDOW_WIDTH, "height": CLIP_HEIGHT}
    last = {**first, "time": 0.9, "x": CLIP_WIDTH - WINDOW_WIDTH}
    return [first, last]


def seq_of(keyframes: list[dict]) -> int | None:
    return round(keyframes[0]["x"] / 0.25) if keyframes else None


class Ledger:
    """Every request and every write sent, with its answer, from all users' threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.writes: list[dict] = []
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter = Counter()
        self.exports: list[dict] = []
        self.events: Counter = Counter()
        self.writes_in_flight = 0
        # (start, end, endpoint, status) of every request, on the monotonic clock
        self.timeline: list[tuple[float, float, str, int | None]] = []

    def request(self, client: ApiClient, endpoint: str, method: str, path: str, **kwargs):
        """One timed request; returns the answer, or None when none came (connection lost)."""
        writing = method != "GET"
        if writing:
            with self._lock:
                self.writes_in_flight += 1
        started = time.monotonic()
        try:
            answer = client.request(method, path, **kwargs)
        except requests.RequestException:
            answer = None
        ended = time.monotonic()
        with self._lock:
            self.writes_in_flight -= writing
            self.latency[endpoint].append(ended - started)
            self.timeline.append((started, ended, endpoint, answer.status if answer else None))
            self.statuses[f"{endpoint} {answer.status if answer else 'no answer'}"] += 1
        return answer

    def write(self, user: str, op: str, key: str, answer: ApiResponse | None, **extra) -> None:
        entry = {
            "user": user,
            "op": op,
            "key": key,
            "status": answer.status if answer else None,
            "sync": answer.sync if answer else None,
            "at": time.monotonic(),
            **extra,
        }
        with self._lock:
            self.writes.append(entry)

    def note(self, event: str, n: int = 1) -> None:
        with self._lock:
            self.events[event] += n

    def export(self, record: dict) -> None:
        with self._lock:
            self.exports.append(record)


@dataclass
class ExportWatch:
    """One export from the user's click to its end, as the export panel follows it."""

    user: str
    project_id: int
    job_id: str | None = None
    outcome: str | None = None
    retries: int = 0
    reconnects: int = 0
    messages: list[tuple[float, str, int]] = field(default_factory=list)  # (t, status, %)


class SimulatedUser:
    WEIGHTS = {
        "page": 20,
        "projects_list": 20,
        "autosave": 40,
        "create_project": 10,
        "upload_clip": 4,
        "export": 6,
    }

    def __init__(self, name, password, entry_url, ledger, clip_path: Path, *, seed: int):
        self.name = name
        self.password = password
        self.entry_url = entry_url
        self.ledger = ledger
        self.clip_path = clip_path
        self.random = random.Random(seed)
        self.client = ApiClient(Target(entry_url), timeout=60)
        self.project_id: int | None = None
        self.clip_id: int | None = None
        self.seq = 0
        self.created = 0
        self.uploads = 0
        self.watchers: list[threading.Thread] = []
        self.watches: list[ExportWatch] = []
        self.exporting = threading.Event()

    # --- Setting up ----------------------------------------------------------------

    def sign_in(self, attempts: int = 5) -> None:
        for attempt in range(attempts):
            try:
                self.client.login(self.name, self.password)
                return
            except (RuntimeError, requests.RequestException):
                if attempt == attempts - 1:
                    raise
                time.sleep(1)

    def set_up(self) -> None:
        """A project with one clip to frame, before any fault."""
        self.sign_in()
        made = self.client.post(
            "/api/projects", {"name": f"{self.name}-reel", "aspect_ratio": "9:16"}
        )
        assert made.status == 201 and made.sync == "ok", made
        self.project_id = made.json["id"]
        self.ledger.write(self.name, "create", made.json["name"], made)
        clip = self._upload("setup-clip.mp4")
        assert clip is not None and clip.status == 201, clip
        self.clip_id = clip.json["id"]

    # --- The session ---------------------------------------------------------------

    def run(self, stop: threading.Event, *, first_export: bool = True) -> None:
        if first_export:
            self.export()
        actions = list(self.WEIGHTS)
        weights = [self.WEIGHTS[a] for a in actions]
        while not stop.is_set():
            action = self.random.choices(actions, weights)[0]
            getattr(self, action)()
            # Think time: a person dragging keyframes, not a benchmark.
            stop.wait(self.random.uniform(0.2, 1.0))

    def page(self) -> None:
        path = self.random.choice(["/", f"/projects/{self.project_id}/"])
        self.ledger.request(self.client, "page", "GET", path)

    def projects_list(self) -> None:
        self.ledger.request(self.client, "projects_list", "GET", "/api/projects")

    def autosave(self) -> None:
        self.seq += 1
        path = f"/api/projects/{self.project_id}/clips/{self.clip_id}"
        body = {"crop_keyframes": keyframes_for(self.seq)}
        answer = self.ledger.request(self.client, "autosave", "PATCH", path, json=body)
        self.ledger.write(self.name, "autosave", str(self.clip_id), answer, seq=self.seq)

    def create_project(self) -> None:
        self.created += 1
        name = f"{self.name}-p{self.created}"
        body = {"name": name, "aspect_ratio": "9:16"}
        answer = self.ledger.request(
            self.client, "create_project", "POST", "/api/projects", json=body
        )
        self.ledger.write(self.name, "create", name, answer)

    def upload_clip(self) -> None:
        self.uploads += 1
        self._upload(f"upload-{self.uploads}.mp4")

    def _upload(self, name: str) -> ApiResponse | None:
        with open(self.clip_path, "rb") as handle:
            answer = self.ledger.request(
                self.client,
                "upload_clip",
                "POST",
                f"/api/projects/{self.project_id}/clips",
                files={"file": (name, handle, "video/mp4")},
            )
        self.ledger.write(self.name, "clip", name, answer)
        return answer

    def export(self) -> None:
        """Start an export and follow it on its own thread (one at a time per user)."""
        if self.exporting.is_set():
            return
        self.exporting.set()
        watch = ExportWatch(self.name, self.project_id)
        self.watches.append(watch)
        thread = threading.Thread(target=self._follow, args=(watch,), daemon=True)
        self.watchers.append(thread)
        thread.start()

    # --- Following an export --------------------------------------------------------

    def _follow(self, watch: ExportWatch, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        try:
            watch.job_id = self._start_export(deadline)
            if watch.job_id is None:
                watch.outcome = "not started"
                return
            while time.monotonic() < deadline and watch.outcome is None:
                self._watch_once(watch, deadline)
        finally:
            if watch.outcome is None:
                watch.outcome = "still running when the watch gave up"
            self.ledger.export(watch.__dict__.copy())
            self.exporting.clear()

    def _start_export(self, deadline: float) -> str | None:
        """POST the export; a refusal while the store or Redis is down is tried again."""
        path = f"/api/projects/{self.project_id}/exports"
        while time.monotonic() < deadline:
            answer = self.ledger.request(
                self.client, "export_start", "POST", path, json={"kind": "framing"}
            )
            if answer is not None and answer.status == 202:
                return answer.json["job_id"]
            self.ledger.note("export start refused or unanswered")
            time.sleep(1)
        return None

    def _watch_once(self, watch: ExportWatch, deadline: float) -> None:
        """One WebSocket session on the job; returns when it ends or the socket drops."""
        ws_url = self.entry_url.replace("http://", "ws://") + f"/ws/exports/{watch.job_id}/"
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.session.cookies.items())
        try:
            with connect(
                ws_url,
                additional_headers={"Cookie": cookie, "Origin": self.entry_url},
                open_timeout=10,
            ) as socket:
                while time.monotonic() < deadline:
                    try:
                        message = json.loads(socket.recv(timeout=5))
                    except TimeoutError:
                        # Quiet for a while: ask for the state (which also notices a
                        # worker that stopped beating, and marks its job lost).
                        socket.send(json.dumps({"type": "state"}))
                        continue
                    if self._handle(watch, message):
                        return
        except (WebSocketException, InvalidHandshake, OSError):
            watch.reconnects += 1
            time.sleep(1)

    def _handle(self, watch: ExportWatch, message: dict) -> bool:
        """True when the export has ended for good."""
        status = message.get("status")
        watch.messages.append((time.monotonic(), status, message.get("progress", 0)))
        if status == "error" and message.get("retryable"):
            answer = self.ledger.request(
                self.client, "export_retry", "POST", f"/api/exports/{watch.job_id}/retry"
            )
            if answer is not None and answer.status == 202:
                watch.retries += 1
            else:
                time.sleep(1)
            return False
        if status in TERMINAL:
            watch.outcome = status if status != "error" else f"error {message.get('error_code')}"
            return True
        return False
