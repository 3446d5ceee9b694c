import time

import pytest

from projects.tests.helpers import create_project
from syncstore import retry
from syncstore.models import SyncState

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_background_loop_pushes_a_copy_left_dirty_by_an_outage(
    settings, s3_store, s3_outage, alice, alice_client
):
    with s3_outage():
        create_project(alice_client, "Saved while the store was down")
    assert not SyncState.objects.filter(user=alice, version=1).exists()

    settings.SYNC_RETRY_INTERVAL = 1
    retry.ensure_running()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if SyncState.objects.filter(user=alice, version=1).exists():
            break
        time.sleep(0.2)
    settings.SYNC_RETRY_INTERVAL = 0
    # No pass of the loop may run into the next test.
    assert retry.wait_until_paused(timeout=10)

    row = SyncState.objects.get(user=alice)
    assert (row.version, row.status) == (1, "ok")
