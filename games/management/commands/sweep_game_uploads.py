"""Remove game uploads nobody finished: chunks of a closed tab that never came back."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from games import chunked


class Command(BaseCommand):
    help = (
        "Remove game uploads that received nothing for GAME_UPLOAD_ABANDON_HOURS "
        "(run it daily, e.g. from cron or a Celery beat)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--hours",
            type=int,
            default=None,
            help="Override GAME_UPLOAD_ABANDON_HOURS for this run.",
        )

    def handle(self, *args, hours=None, **options):
        limit = settings.GAME_UPLOAD_ABANDON_HOURS if hours is None else hours
        swept = chunked.sweep_abandoned(older_than=timedelta(hours=limit))
        plural = "" if swept == 1 else "s"
        self.stdout.write(f"Removed {swept} abandoned game upload{plural} (idle over {limit} h).")
