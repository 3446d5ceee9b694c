"""The cluster of the load and fault suite: the one ``make cluster`` starts, on free
ports, its own PostgreSQL database and a temporary folder. Service logs go into the
report of a failing test."""

import shutil
from pathlib import Path

import pytest

from reeleditor.localcluster.cluster import LocalCluster, Ports
from syncstore.tests.faults import postgres

_CLUSTER_DIR = Path(__file__).resolve().parent
# Fast enough to see every fault's recovery within the suite's few minutes: a worker
# that stops beating is lost after 10 s, a store call gives up after 1 s (connect) or
# 2 s (read), so a write's push (three tries) fails within the 10 s cut rather than
# outlasting it, and copies kept through a store cut are retried every 2 s.
SUITE_ENV = {
    "EXPORT_STALE_AFTER": "10",
    "EXPORT_HEARTBEAT_SECONDS": "2",
    "EXPORT_PRESET": "ultrafast",
    "SNAPSHOT_CONNECT_TIMEOUT": "1",
    "SNAPSHOT_READ_TIMEOUT": "2",
    "SYNC_RETRY_INTERVAL": "2",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _CLUSTER_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    cluster = getattr(item, "_cluster", None)
    if report.failed and cluster is not None:
        for service in cluster.services():
            report.sections.append((f"{service.name} log (tail)", service.log_tail(3000)))
    return report


@pytest.fixture
def cluster(request, tmp_path):
    missing = [tool for tool in ("nginx", "redis-server") if not _found(tool)]
    reason = postgres.unavailable_reason()
    if missing or reason:
        pytest.fail(f"the cluster needs {missing or reason}: run scripts/test-services.sh")
    postgres.drop_stale_databases("reeleditor_cluster")
    database_url = postgres.fresh_database_url(prefix="reeleditor_cluster")
    cluster = LocalCluster(
        tmp_path / "cluster", database_url, ports=Ports.free(), extra_env=SUITE_ENV
    )
    request.node._cluster = cluster
    try:
        cluster.start(progress=lambda step: None)
        yield cluster
    finally:
        cluster.stop()
        postgres.drop_database(database_url)


def _found(tool: str) -> bool:
    return bool(shutil.which(tool) or Path("/usr/sbin", tool).exists())
