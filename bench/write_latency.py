"""What saving costs: the latency of a write request, this tree against another, in one run.

    .venv/bin/python bench/write_latency.py [--writes 200] [--baseline <git rev>]

A write is a project rename through the whole request path (Django's test client, every
middleware, the lease, the push of a snapshot to a local-folder store and the commit).
The baseline is another revision of this repository (default: the commit before "Saved
means saved", 12375fb), checked out into a temporary worktree and measured by the same
script in turns with this tree, so both see the same machine load. Each side runs in
its own process with its own data folder. Printed: p50/p95 in ms and the ratios.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "12375fb"


def measure(tree: Path, writes: int, extra_env: dict | None = None) -> dict:
    """Run the measurement in a child process importing ``tree``'s code."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
        "REELEDITOR_DATA_DIR": tempfile.mkdtemp(prefix="bench-writes-"),
        "SYNC_RETRY_INTERVAL": "0",
        "ALLOWED_HOSTS": "testserver",
        **(extra_env or {}),
    }
    code = f"""
import json, statistics, sys, time
sys.path.insert(0, {str(tree)!r})
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.create_user("bench", password="x")
client = Client(); client.force_login(user)
made = client.post("/api/projects", {{"name": "p", "aspect_ratio": "9:16"}},
                   content_type="application/json").json()
url = f"/api/projects/{{made['id']}}"
samples = []
for i in range({writes}):
    start = time.perf_counter()
    response = client.patch(url, {{"name": f"p{{i}}"}}, content_type="application/json")
    samples.append((time.perf_counter() - start) * 1000)
    assert response.status_code == 200 and response["X-Sync-Status"] == "ok", response
samples.sort()
print(json.dumps({{"p50": samples[len(samples) // 2], "p95": samples[int(len(samples) * 0.95)]}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    args = parser.parse_args()
    baseline = Path(tempfile.mkdtemp(prefix="bench-baseline-")) / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(baseline), args.baseline],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        sides = {
            "baseline": (baseline, None),
            "this tree": (ROOT, None),
            "this tree, synchronous=NORMAL": (ROOT, {"REELEDITOR_BENCH_SQLITE_SYNC": "NORMAL"}),
        }
        results = {name: [] for name in sides}
        for _ in range(args.rounds):  # interleaved, so both sides see the same load
            for name, (tree, env) in sides.items():
                results[name].append(measure(tree, args.writes, env))
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False
        )
    best = {name: min(runs, key=lambda r: r["p50"]) for name, runs in results.items()}
    base = best["baseline"]
    print(f"{'':32} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10} {'p95 ratio':>10}")
    for name, result in best.items():
        print(
            f"{name:32} {result['p50']:8.1f} {result['p95']:8.1f} "
            f"{result['p50'] / base['p50']:10.2f} {result['p95'] / base['p95']:10.2f}"
        )


if __name__ == "__main__":
    main()
