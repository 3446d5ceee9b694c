"""A coach editing a reel, as locust simulates it (used by ``bench/load.py``).

Each simulated user signs in like a browser (the login form's CSRF token), makes a
project with one small clip (named ``setup: ...``, left out of the report), then loops
over a realistic session: the framing editor's keyframe autosave every few seconds,
the projects list, opening the project's page, and now and then an export, watched by
polling its state once a second as the export panel does when its WebSocket is down.

Environment: ``LOAD_PASSWORD`` (every user's), ``LOAD_CLIP`` (the clip file to upload),
``LOAD_USERS_PREFIX`` (users are ``<prefix><n>``, made by ``bench/load.py``),
``LOAD_THINK`` (``session``: 1.5-3.5 s between actions; ``none``: a closed loop),
``LOAD_LEDGER`` (a file: when a user stops it appends one JSON line with its clip, the
keyframes of its last autosave answered ``X-Sync-Status: ok`` and those it sent after
that whose answers said otherwise or never came, which ``bench/load.py`` checks against the store).
"""

import itertools
import json
import os
import random
import re
import time

from locust import HttpUser, between, constant, task

_numbers = itertools.count(1)
PASSWORD = os.environ.get("LOAD_PASSWORD", "load-pw-1")
CLIP = os.environ.get("LOAD_CLIP", "")
PREFIX = os.environ.get("LOAD_USERS_PREFIX", "load")
# "session": a person's pauses between actions; "none": each user sends its next request
# as soon as the last is answered (a closed loop: what the machine can serve at most).
THINK = os.environ.get("LOAD_THINK", "session")
LEDGER = os.environ.get("LOAD_LEDGER", "")


class Coach(HttpUser):
    wait_time = between(1.5, 3.5) if THINK == "session" else constant(0)

    def on_start(self):
        self.username = f"{PREFIX}{next(_numbers)}"
        self._sign_in()
        self.rng = random.Random(self.username)
        created = self._post("/api/projects", {"name": "Club night", "aspect_ratio": "9:16"},
                             name="setup: create project")  # fmt: skip
        self.project_id = created["id"]
        with open(CLIP, "rb") as clip:
            response = self.client.post(
                f"/api/projects/{self.project_id}/clips",
                files={"file": ("game.mp4", clip, "video/mp4")},
                headers=self._csrf(),
                name="setup: upload clip",
            )
        response.raise_for_status()
        clip = response.json()
        self.clip_url = f"/api/projects/{self.project_id}/clips/{clip['id']}"
        self.duration = float(clip.get("duration") or 1.0)
        self.keyframes = [self._keyframe(t / 4 * self.duration) for t in range(5)]
        self.clip_id = clip["id"]
        self.acknowledged = None  # the keyframes of the last autosave answered "ok"
        self.unconfirmed = []  # sent after it, answered otherwise (may still commit)

    def on_stop(self):
        if LEDGER and getattr(self, "clip_id", None) is not None:
            entry = {
                "user": self.username,
                "clip": self.clip_id,
                "acknowledged": self.acknowledged,
                "unconfirmed": self.unconfirmed,
            }
            with open(LEDGER, "a") as ledger:  # greenlets of one process: whole lines
                ledger.write(json.dumps(entry) + "\n")  # fmt: skip

    def _sign_in(self):
        page = self.client.get("/accounts/login/", name="setup: login page")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        response = self.client.post(
            "/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": self.username, "password": PASSWORD},
            headers={"Referer": self.host + "/accounts/login/"},
            allow_redirects=False,
            name="setup: sign in",
        )
        if response.status_code != 302:
            raise RuntimeError(f"sign-in of {self.username} failed: {response.status_code}")

    def _csrf(self) -> dict:
        return {"X-CSRFToken": self.client.cookies.get("csrftoken", "")}

    def _post(self, path, body, *, name, method="post"):
        response = getattr(self.client, method)(path, json=body, headers=self._csrf(), name=name)
        response.raise_for_status()
        return response.json()

    def _keyframe(self, t):
        return {"time": round(t, 3), "x": 100.0, "y": 0.0, "width": 101.25, "height": 180.0}

    @task(6)
    def autosave(self):
        """One keyframe moved, as framing.js saves it; durable or it failed."""
        moved = self.rng.randrange(len(self.keyframes))
        self.keyframes[moved]["x"] = round(self.rng.uniform(0, 200), 2)
        sent = [dict(frame) for frame in self.keyframes]
        # Unconfirmed until answered: the run may end with this request in flight (locust
        # stops a user mid-request), and the server may still commit it.
        self.unconfirmed.append(sent)
        with self.client.patch(
            self.clip_url,
            json={"crop_keyframes": self.keyframes},
            headers=self._csrf(),
            name="autosave",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or response.headers.get("X-Sync-Status") != "ok":
                response.failure(f"{response.status_code} {response.headers.get('X-Sync-Status')}")
            else:
                self.acknowledged, self.unconfirmed = sent, []

    @task(3)
    def projects_list(self):
        self.client.get("/api/projects", name="projects list")

    @task(1)
    def open_project(self):
        self.client.get(f"/projects/{self.project_id}/", name="project page")

    @task(1)
    def sometimes_export(self):
        if self.rng.random() > 0.15:
            return
        job = self._post(f"/api/projects/{self.project_id}/exports", {"kind": "framing"},
                         name="export start")  # fmt: skip
        deadline = time.monotonic() + 120
        while job["status"] in ("pending", "processing") and time.monotonic() < deadline:
            time.sleep(1)
            job = self.client.get(f"/api/exports/{job['job_id']}", name="export state").json()
