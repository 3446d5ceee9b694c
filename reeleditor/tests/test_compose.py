"""compose.yaml cannot be run here (no Docker), so it is held to what the local cluster
runs (reeleditor/localcluster), which the load and fault suite exercises: the same
commands, the same settings, the same entry point configuration."""

from pathlib import Path

import pytest
import yaml

from reeleditor.localcluster.cluster import LocalCluster, Ports, clean_environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    return LocalCluster(tmp_path_factory.mktemp("cluster"), "postgres://x/y", ports=Ports())


def after(command: list[str], program: str) -> list[str]:
    """The arguments after ``program`` (``python -m daphne ...`` vs ``daphne ...``)."""
    return command[command.index(program) + 1 :]


def options(args: list[str]) -> dict[str, str]:
    return dict(zip(args[::2], args[1::2], strict=True))


def test_the_web_instances_run_reeleditor_serve_as_the_cluster_does(compose, cluster):
    cluster_options = options(after(cluster.web[0].command, "reeleditor.serve"))
    for name in ("web1", "web2"):
        compose_options = options(after(compose[name]["command"], "reeleditor.serve"))
        assert compose_options.keys() == cluster_options.keys() == {"--bind", "--processes"}
        assert compose_options["--bind"] == "0.0.0.0:8000"
        assert cluster_options["--bind"].startswith("127.0.0.1:")
        assert compose_options["--processes"] == "${WEB_PROCESSES:-2}"
        assert compose[name]["build"]["args"]["REQUIREMENTS"] == "requirements.txt"  # no CUDA


def test_the_worker_runs_celery_as_the_cluster_does(compose, cluster):
    cluster_args = after(cluster.worker.command, "celery")
    shell = compose["worker"]["command"][-1]
    args = shell.split("exec celery ", 1)[1].split()
    ignore_concurrency = {"--concurrency", "1", "2"}
    assert [a for a in args if a not in ignore_concurrency] == [
        a for a in cluster_args if a not in ignore_concurrency
    ]
    assert compose["worker"]["build"]["args"]["REQUIREMENTS"] == "requirements-upscale.txt"


def test_every_setting_the_cluster_gives_the_app_is_set_in_compose(compose, cluster):
    cluster_env = cluster.app_env(Path("/data"))
    ours = set(cluster_env) - set(clean_environment())  # the cluster's own settings
    # Set by the image (Dockerfile ENV) rather than compose.
    ours -= {"PYTHONUNBUFFERED", "DJANGO_SETTINGS_MODULE"}
    for name in ("web1", "web2", "worker"):
        missing = ours - set(compose[name]["environment"])
        assert not missing, f"{name} lacks {sorted(missing)}"
    worker_env = compose["worker"]["environment"]
    for name in ("WORKER_METRICS_PORT", "PROMETHEUS_MULTIPROC_DIR"):
        assert name in cluster.worker.env and name in worker_env


def test_the_entry_point_shares_the_clusters_nginx_configuration(compose):
    mounts = compose["entry"]["volumes"]
    assert "./deploy/nginx/reeleditor.conf:/etc/nginx/reeleditor.conf:ro" in mounts
    conf = (ROOT / "deploy/nginx/compose.conf").read_text()
    assert "include /etc/nginx/reeleditor.conf;" in conf
    for upstream in ("reeleditor", "reeleditor_ws"):
        assert f"upstream {upstream} {{" in conf
    assert "server web1:8000" in conf and "server web2:8000" in conf


def test_redis_keeps_its_queue_across_a_restart_in_both(compose, cluster):
    assert "--appendonly" in compose["redis"]["command"]
    assert "--appendonly" in cluster.redis.command
