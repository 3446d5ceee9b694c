import pytest

from exports.models import ExportJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_job(alice):
    return ExportJob.objects.create(
        user=alice, project_id=1, project_name="Cup", kind="framing", status="error",
        error_code="sync_failed", error="not saved", retryable=True,
    )  # fmt: skip


def test_staff_see_jobs_filtered_by_status(admin_client, failed_job):
    response = admin_client.get("/admin/exports/exportjob/?status__exact=error")
    assert response.status_code == 200
    assert b"Cup" in response.content
    assert b">error</span>" in response.content


def test_the_retry_action_requeues_a_failed_job(admin_client, failed_job):
    response = admin_client.post(
        "/admin/exports/exportjob/",
        {"action": "retry_jobs", "_selected_action": [str(failed_job.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    failed_job.refresh_from_db()
    assert failed_job.status == "pending"


def test_the_cancel_action_stops_a_pending_job(admin_client, alice):
    job = ExportJob.objects.create(user=alice, project_id=2, kind="framing")
    admin_client.post(
        "/admin/exports/exportjob/", {"action": "cancel_jobs", "_selected_action": [str(job.pk)]}
    )
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_normal_users_cannot_reach_it(alice_client, failed_job):
    response = alice_client.get("/admin/exports/exportjob/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
