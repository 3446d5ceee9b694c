"""``python -m reeleditor.localcluster up|down|status`` (``make cluster``, ``make cluster-down``).

``up`` starts the whole cluster in the background on a clean slate, with the demo user
(demo / demo), prints where everything is and returns; ``down`` stops it; ``status``
says what runs. State and logs live in ``var/cluster/`` (``cluster.json``, one log
per service). PostgreSQL is the server at ``CLUSTER_POSTGRES_URL`` (default
``postgres://postgres@127.0.0.1:5432/postgres``, what ``scripts/test-services.sh``
sets up); the cluster's database there, ``reeleditor_cluster``, is created afresh by
every ``up``.
"""

import argparse
import json
import os
import sys
import urllib.parse
from pathlib import Path

from .cluster import ROOT, LocalCluster, Ports
from .processes import ServiceFailed, stop_process_group

DEFAULT_DIR = ROOT / "var" / "cluster"
DATABASE = "reeleditor_cluster"
STOP_ORDER = ("entry", "worker", "web2", "web1", "s3", "redis")


def admin_url() -> str:
    return os.environ.get("CLUSTER_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def recreate_database(name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urllib.parse.urlsplit(admin_url())
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def read_state(workdir: Path) -> dict | None:
    try:
        return json.loads((workdir / "cluster.json").read_text())
    except FileNotFoundError:
        return None


def running(state: dict | None) -> dict[str, int]:
    """The services of ``state`` whose process still runs."""
    alive = {}
    for name, pid in (state or {}).get("pids", {}).items():
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, TypeError):
            continue
        alive[name] = pid
    return alive


def up(workdir: Path, database: str, free_ports: bool, web_processes: int = 1) -> int:
    if running(read_state(workdir)):
        print(f"a cluster is already running (state in {workdir}); `make cluster-down` first")
        return 1
    workdir.mkdir(parents=True, exist_ok=True)
    ports = Ports.free() if free_ports else Ports()
    cluster = LocalCluster(
        workdir, recreate_database(database), ports=ports, web_processes=web_processes
    )
    try:
        cluster.start(demo=True, progress=lambda step: print(f"cluster: starting {step}"))
    except ServiceFailed as exc:
        print(f"cluster: could not start: {exc}", file=sys.stderr)
        return 1
    cluster.write_state()
    ports = cluster.ports
    print(
        f"""
cluster is up: {cluster.url}  (sign in as demo / demo)
  web instances  http://127.0.0.1:{ports.web[0]}  http://127.0.0.1:{ports.web[1]}
  worker metrics http://127.0.0.1:{ports.worker_metrics}/metrics
  PostgreSQL     {cluster.database_url}
  Redis          {cluster.redis_url}
  S3 (moto)      {cluster.s3_url}  bucket reeleditor
  logs           {workdir}/*.log
stop it with: make cluster-down"""
    )
    return 0


def down(workdir: Path, **_) -> int:
    state = read_state(workdir)
    alive = running(state)
    if not alive:
        print("cluster: nothing is running")
        return 0
    for name in STOP_ORDER:
        if name in alive:
            print(f"cluster: stopping {name}")
            stop_process_group(alive[name])
    print("cluster: stopped")
    return 0


def status(workdir: Path, **_) -> int:
    state = read_state(workdir)
    alive = running(state)
    if not state:
        print("cluster: never started here")
        return 1
    for name, pid in state["pids"].items():
        print(f"{name:8} {'running' if name in alive else 'stopped'} (pid {pid})")
    print(f"entry point: {state['url']}")
    return 0 if len(alive) == len(state["pids"]) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reeleditor.localcluster")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state and logs")
    parser.add_argument("--database", default=DATABASE, help="recreated by up")
    parser.add_argument(
        "--free-ports", action="store_true", help="any free ports instead of 8080, 8001, ..."
    )
    parser.add_argument(
        "--web-processes", type=int, default=1, help="daphne processes per web instance"
    )
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.dir.resolve(), args.database, args.free_ports, args.web_processes)
    command = {"down": down, "status": status}[args.command]
    return command(args.dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
