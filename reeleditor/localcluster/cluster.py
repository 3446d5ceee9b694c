"""The production topology on one machine, from the same commands compose.yaml runs.

    entry point (nginx, round-robin)  ->  web1, web2 (daphne, each its own data folder)
    web1, web2, worker                ->  PostgreSQL (central database), Redis (Channels
                                          and the Celery broker), S3 (moto: snapshots, media)
    worker (Celery, its own data folder) runs the exports

Every app process runs in production mode (``DJANGO_DEBUG=false``, JSON logs, static
files collected and served by WhiteNoise) on its own ``REELEDITOR_DATA_DIR``, as if it
were its own machine: the only things they share are the central database, Redis and
the bucket. ``SECURE_COOKIES=false`` because the entry point speaks plain HTTP here.

The cluster is throwaway: moto keeps its bucket in memory, so every start begins with
an empty database, bucket and data folders (a registry that remembered versions the
store no longer had would be a cluster that lies).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .processes import MotoServer, Service, ServiceFailed, free_port, http_answers, port_answers

ROOT = Path(__file__).resolve().parents[2]
NGINX_SHARED_CONF = ROOT / "deploy" / "nginx" / "reeleditor.conf"
BUCKET = "reeleditor"
# The developer's shell must not configure the processes of the cluster.
_APP_ENV_PREFIXES = (
    "AWS_",
    "S3_",
    "SNAPSHOT_",
    "EXPORT_",
    "DJANGO_",
    "SYNC_",
    "LEASE_",
    "UPSCALE_",
    "REELEDITOR_",
    "DATABASE_",
    "USER_DATABASE_",
    "MAX_",
    "PROMETHEUS_",
)
_APP_ENV_NAMES = (
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "SECURE_COOKIES",
    "TRUSTED_PROXY_COUNT",
    "METRICS_TOKEN",
    "WORKER_METRICS_PORT",
)


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that configures the app."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_APP_ENV_PREFIXES) and name not in _APP_ENV_NAMES
    }


@dataclass
class Ports:
    entry: int = 8080
    web: list[int] = field(default_factory=lambda: [8001, 8002])
    redis: int = 6380
    s3: int = 9000
    worker_metrics: int = 9101

    @classmethod
    def free(cls) -> Ports:
        """Ports nothing listens on now (tests run beside a developer's cluster)."""
        return cls(free_port(), [free_port(), free_port()], free_port(), free_port(), free_port())

    def taken(self) -> list[int]:
        ports = [self.entry, *self.web, self.redis, self.s3, self.worker_metrics]
        return [port for port in ports if port_answers(port)]


class LocalCluster:
    """Start, stop and fault the cluster's services (see the module docstring).

    ``extra_env`` is added to every app process's environment (web and worker), after
    the cluster's own settings.
    """

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        *,
        ports: Ports | None = None,
        extra_env: dict[str, str] | None = None,
        web_processes: int = 1,
    ):
        self.workdir = Path(workdir).resolve()
        # Each web instance (its own machine) runs this many daphne processes on its
        # port and data folder (reeleditor.serve), as compose's WEB_PROCESSES does.
        self.web_processes = web_processes
        self.database_url = database_url
        self.ports = ports or Ports()
        self.extra_env = dict(extra_env or {})
        python = sys.executable
        self.redis = Service(
            "redis",
            [
                "redis-server", "--bind", "127.0.0.1", "--port", str(self.ports.redis),
                "--dir", str(self.workdir / "redis"), "--save", "",
                # Queued exports and Channels groups survive a restart (compose: the same).
                "--appendonly", "yes", "--appendfsync", "always",
            ],
            workdir=self.workdir, port=self.ports.redis,
        )  # fmt: skip
        self.s3 = MotoServer(self.workdir, self.ports.s3, env=clean_environment())
        self.web = [
            self._web_instance(number, port) for number, port in enumerate(self.ports.web, 1)
        ]
        worker_env = self.app_env(self.workdir / "worker" / "data")
        worker_env.update(
            {
                "WORKER_METRICS_PORT": str(self.ports.worker_metrics),
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "worker" / "metrics"),
                # Celery closes a pool around every task in its forked children, so a
                # worker would only open more connections with one (see settings).
                "DATABASE_POOL": "false",
            }
        )
        self.worker = Service(
            "worker",
            [
                python, "-m", "celery", "-A", "reeleditor", "worker", "--concurrency", "1",
                "-n", "worker1@%h", "--without-mingle", "--without-gossip", "--loglevel", "INFO",
            ],
            workdir=self.workdir, cwd=ROOT, env=worker_env,
            ready=self._worker_ready,
        )  # fmt: skip
        self.entry = Service(
            "entry",
            [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(self.workdir / "nginx"),
             "-c", str(self.workdir / "nginx.conf"), "-e", str(self.workdir / "nginx-error.log")],
            workdir=self.workdir, port=self.ports.entry,
        )  # fmt: skip

    def _web_instance(self, number: int, port: int) -> Service:
        return Service(
            f"web{number}",
            [sys.executable, "-m", "reeleditor.serve", "--bind", f"127.0.0.1:{port}",
             "--processes", str(self.web_processes)],
            workdir=self.workdir, cwd=ROOT, port=port,
            env=self.app_env(self.workdir / f"web{number}" / "data"),
            ready=lambda: http_answers(f"http://127.0.0.1:{port}/healthz"),
        )  # fmt: skip

    # --- Addresses -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The entry point: what users (and the load tests) talk to."""
        return f"http://127.0.0.1:{self.ports.entry}"

    @property
    def s3_url(self) -> str:
        return self.s3.url

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/0"

    def services(self) -> list[Service]:
        """In start order; stop goes the other way."""
        return [self.redis, self.s3, *self.web, self.worker, self.entry]

    def app_env(self, data_dir: Path) -> dict[str, str]:
        """The environment of a web instance or worker whose machine's disk is ``data_dir``."""
        origins = [f"http://{host}:{self.ports.entry}" for host in ("127.0.0.1", "localhost")]
        env = clean_environment()
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "reeleditor.settings",
                "PYTHONUNBUFFERED": "1",
                "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": "local-cluster-only-not-a-secret",
                "SECURE_COOKIES": "false",
                # nginx in front: sign-in throttling counts the address nginx saw.
                "TRUSTED_PROXY_COUNT": "1",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "CSRF_TRUSTED_ORIGINS": ",".join(origins),
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "S3_BUCKET": BUCKET,
                "S3_ENDPOINT_URL": self.s3_url,
                "S3_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "local-cluster",
                "AWS_SECRET_ACCESS_KEY": "local-cluster",
                "REELEDITOR_DATA_DIR": str(data_dir),
                "LOG_FORMAT": "json",
            }
        )
        env.update(self.extra_env)
        return env

    # --- Life cycle ------------------------------------------------------------------

    def start(self, *, demo: bool = False, progress=print) -> LocalCluster:
        """Start everything on a clean slate; ``demo`` adds the demo user and project."""
        taken = self.ports.taken()
        if taken:
            raise ServiceFailed(f"ports already in use: {taken} (is a cluster running?)")
        self._clean_slate()
        try:
            progress("redis, s3 (moto) ...")
            self.redis.start()
            self.s3.start()
            self._create_bucket()
            progress("migrate, collectstatic ...")
            self.manage("migrate", "--noinput")
            self.manage("collectstatic", "--noinput")
            if demo:
                progress("demo user and project ...")
                self.manage("createdemo", "--seconds", "4")
            progress("web1, web2, worker, entry point ...")
            for service in self.web:
                service.start()
            self.worker.start(timeout=120)
            self._write_nginx_conf()
            self.entry.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for service in reversed(self.services()):
            service.stop()

    def _clean_slate(self) -> None:
        for name in ("web1", "web2", "worker", "redis", "nginx", "manage"):
            shutil.rmtree(self.workdir / name, ignore_errors=True)
        for name in ("redis", "nginx/tmp", "worker/metrics"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)

    def _create_bucket(self) -> None:
        import boto3

        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.s3_url,
            region_name="us-east-1",
            aws_access_key_id="local-cluster",
            aws_secret_access_key="local-cluster",
        )
        client.create_bucket(Bucket=BUCKET)

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """``manage.py`` as an operator on a machine of its own (``manage/data``)."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.app_env(self.workdir / "manage" / "data"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode:
            output = result.stdout[-2000:] + result.stderr[-4000:]
            raise ServiceFailed(f"manage.py {' '.join(args)} failed:\n{output}")
        return result

    def _worker_ready(self) -> bool:
        # Celery prints "<name> ready." once it consumes its queues (this start's log
        # only: a restarted worker's log still holds the last start's line).
        return "worker1@" in (log := self.worker.log_since_start()) and " ready." in log

    def _write_nginx_conf(self) -> None:
        """nginx's main configuration: this cluster's ports, then the shared server part."""
        tmp = self.workdir / "nginx" / "tmp"
        upstreams = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=3 fail_timeout=5s;"
            for port in self.ports.web
        )
        ws_upstreams = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=0;" for port in self.ports.web
        )
        # As root, nginx's workers would drop to "nobody" and could not write the temp
        # folders here; the cluster is a developer's tool, so they stay who started it.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp_paths = "\n".join(
            f"    {kind}_temp_path {tmp / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.workdir / "nginx.conf").write_text(
            f"""# Written by reeleditor/localcluster for this cluster's ports.
{user}daemon off;
worker_processes 1;
pid {self.workdir / "nginx" / "nginx.pid"};
error_log {self.workdir / "nginx-error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    log_format timed '$remote_addr "$request" $status $request_time '
                     'upstream=$upstream_addr $upstream_response_time id=$request_id';
    access_log {self.workdir / "nginx-access.log"} timed;
{temp_paths}
    upstream reeleditor {{
{upstreams}
        keepalive 16;
    }}
    upstream reeleditor_ws {{
{ws_upstreams}
    }}
    server {{
        listen 127.0.0.1:{self.ports.entry};
        include {NGINX_SHARED_CONF};
    }}
}}
"""
        )

    # --- State for the command line ----------------------------------------------------

    def state(self) -> dict:
        return {
            "url": self.url,
            "database_url": self.database_url,
            "ports": asdict(self.ports),
            "workdir": str(self.workdir),
            "pids": {service.name: service.pid for service in self.services()},
            "started_at": time.time(),
        }

    def write_state(self) -> Path:
        path = self.workdir / "cluster.json"
        path.write_text(json.dumps(self.state(), indent=2) + "\n")
        return path
