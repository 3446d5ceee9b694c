"""Create a demo user with a project and a generated game clip, ready to frame and export."""

import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand
from tqdm import tqdm

from projects.clips import add_clip
from projects.models import Project
from projects.probe import probe_video
from projects.synthetic import write_game_clip
from syncstore.sync import writing

PROJECT_NAME = "Demo: Saturday match"


class Command(BaseCommand):
    help = "Create a demo user and a 9:16 project with a synthetic 1080p game clip."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo")
        parser.add_argument("--seconds", type=float, default=6.0)
        parser.add_argument("--width", type=int, default=1920)
        parser.add_argument("--height", type=int, default=1080)

    def handle(self, *args, **options):
        user = self._user(options["username"], options["password"])
        # Like any write, under the lease and committed to a snapshot at the end.
        with writing(user.pk) as outcome:
            if Project.objects.filter(name=PROJECT_NAME).exists():
                self.stdout.write(f"Demo project already there for user {user.username!r}.")
                return
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "saturday-match.mp4"
                self._generate(path, options)
                project = Project.objects.create(name=PROJECT_NAME, aspect_ratio="9:16")
                with open(path, "rb") as handle:
                    add_clip(project, File(handle, name=path.name), path.name, probe_video(path))
        if not outcome.ok:
            failures = "; ".join(r.error for r in outcome.results.values() if not r.ok)
            self.stderr.write(f"The demo data is saved locally but not yet synced: {failures}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: sign in as {user.username!r} (password {options['password']!r})."
            )
        )

    def _user(self, username, password):
        users = get_user_model()
        user, created = users.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save()
        return user

    def _generate(self, path, options):
        with tqdm(desc="Generating demo clip", unit="frame", file=self.stderr) as bar:

            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            write_game_clip(
                path,
                width=options["width"],
                height=options["height"],
                seconds=options["seconds"],
                with_audio=True,
                progress=progress,
            )
