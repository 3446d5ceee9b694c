"""What the cluster has committed, read by an operator's machine that never saw the users.

``AUDIT`` runs in ``manage.py shell`` with the cluster's settings on an empty data
folder: every user's data it reads comes from the committed snapshot in the store (so
it is what any machine would see from now on), and every media file is looked up in
the bucket. It prints one JSON line.
"""

AUDIT = r"""
import json
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from exports.models import ExportJob
from projects.models import Clip, FinalVideo, Project, WorkingVideo
from syncstore import sync
from syncstore.binding import bound_to_user

report = {"users": {}, "jobs": []}
for user in get_user_model().objects.filter(username__startswith="load"):
    row = sync.ensure_fresh(user.pk)
    with bound_to_user(user.pk):
        videos = [
            {"job": v.export_job_id, "file": v.file, "stored": default_storage.exists(v.file)}
            for model in (WorkingVideo, FinalVideo)
            for v in model.objects.all()
        ]
        report["users"][user.username] = {
            "version": row.version if row else 0,
            "projects": sorted(Project.objects.values_list("name", flat=True)),
            "clips": [
                {
                    "id": c.id, "name": c.name, "stored": default_storage.exists(c.file),
                    "keyframes": c.crop_keyframes,
                }
                for c in Clip.objects.all()
            ],
            "videos": videos,
        }
for job in ExportJob.objects.filter(user__username__startswith="load"):
    report["jobs"].append(
        {"id": str(job.id), "user": job.user.username, "status": job.status,
         "error_code": job.error_code, "attempts": job.attempts}
    )
print("audit " + json.dumps(report))
"""


def parse(stdout: str) -> dict:
    import json

    for line in stdout.splitlines():
        if line.startswith("audit "):
            return json.loads(line[len("audit ") :])
    raise AssertionError(f"no audit line in: {stdout[-2000:]!r}")
