"""A second app instance for tests: a separate process with its own data folder, sharing
the central database and the snapshot store with the test process.

Configured entirely through the environment, as a real deployment is:
``DJANGO_SETTINGS_MODULE=reeleditor.settings``, ``REELEDITOR_DATA_DIR`` (this instance's
own folder), ``DATABASE_URL`` (the test's central database), ``S3_BUCKET``,
``S3_ENDPOINT_URL``, ``S3_REGION`` and the AWS credentials, ``ALLOWED_HOSTS=testserver``.

Commands come as arguments (each one a whole command) or, with none, one per line on
stdin; each answer is one line of JSON on stdout:

* ``create <user_id> <name...>`` -> ``POST /api/projects`` (aspect ratio 9:16)
* ``list <user_id>`` -> ``GET /api/projects``
* ``status <user_id>`` -> ``GET /api/sync/status``
* ``state <user_id>`` -> this instance's working-copy state (no request)
* ``quit``

Requests go through the real request path: Django's test ``Client`` signed in with
``force_login`` (the session lives in the central database), every middleware
included. A request answers ``{"status", "sync", "body"}``; a failed command answers
``{"error": "..."}``.
"""

import json
import os
import shlex
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reeleditor.settings")


def main(argv):
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.test import Client

    from syncstore import workingcopy

    clients = {}

    def client_for(user_id):
        if user_id not in clients:
            client = Client()
            client.force_login(get_user_model().objects.get(pk=user_id))
            clients[user_id] = client
        return clients[user_id]

    def answer(response):
        try:
            body = response.json()
        except ValueError:
            body = response.content.decode(errors="replace")
        return {"status": response.status_code, "sync": response.get("X-Sync-Status"), "body": body}

    def run(line):
        words = shlex.split(line)
        if not words:
            return None
        command, user_id, rest = words[0], int(words[1]) if len(words) > 1 else None, words[2:]
        if command == "create":
            data = {"name": " ".join(rest), "aspect_ratio": "9:16"}
            return answer(
                client_for(user_id).post(
                    "/api/projects", json.dumps(data), content_type="application/json"
                )
            )
        if command == "list":
            return answer(client_for(user_id).get("/api/projects"))
        if command == "status":
            return answer(client_for(user_id).get("/api/sync/status"))
        if command == "state":
            state = workingcopy.read_state(user_id)
            return {**asdict(state), "dirty": state.dirty}
        raise ValueError(f"unknown command {command!r}")

    lines = argv if argv else (line.strip() for line in sys.stdin)
    for line in lines:
        if line == "quit":
            break
        try:
            result = run(line)
        except Exception as exc:
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
        if result is not None:
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
