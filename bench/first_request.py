"""What a new user's first request costs: creating their database.

    .venv/bin/python bench/first_request.py [--users 50]

Compares, in one run on one machine: copying the pre-migrated template (what the app
does), running the app's migrations on an empty file, and opening an existing
database (the migration check). Results go in docs/architecture.md.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reeleditor.settings")
os.environ["REELEDITOR_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-first-request-")

import django

django.setup()

from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)  # the central database holds the sync registry

from django.db import connections  # noqa: E402

from syncstore import userdb  # noqa: E402


def timed(fn, runs):
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def open_and_close(user_id):
    alias = userdb.acquire(user_id)
    connections[alias].ensure_connection()
    userdb.release(alias)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    runs = parser.parse_args().users
    open_and_close(10_000_000)  # builds the template once, as the first request ever does

    def new_from_template(i):
        open_and_close(1 + i)

    def new_by_migrating(i):
        user_id = 1_000_000 + i
        path = userdb.database_path(user_id)
        path.parent.mkdir(parents=True)
        path.touch()  # an empty database: every migration runs
        open_and_close(user_id)

    def existing(i):
        userdb.forget_all()  # as in a fresh process: the migration check runs again
        open_and_close(1 + i)

    rows = [
        (
            "new user, copy of the migrated template (what the app does)",
            timed(new_from_template, runs),
        ),
        ("new user, migrate an empty file", timed(new_by_migrating, runs)),
        ("existing user, first open in a process (migration check)", timed(existing, runs)),
    ]
    print(f"| case ({runs} users) | median ms | max ms |\n|---|---|---|")
    for name, (median, worst) in rows:
        print(f"| {name} | {median:.2f} | {worst:.2f} |")


if __name__ == "__main__":
    main()
