"""Purge the data of accounts deleted longer ago than ACCOUNT_PURGE_GRACE_SECONDS
(first deleting those whose owners asked for it that long ago)."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from accounts import deletion
from syncstore import accounts
from syncstore.management import BarStream


class Command(BaseCommand):
    help = (
        "Remove the snapshots, conflict copies, media and this machine's working copies "
        "of accounts deleted longer ago than the grace period."
    )

    def handle(self, *args, **options):
        asked = deletion.delete_due_accounts()
        if asked:
            self.stdout.write(f"{asked} accounts deleted as their owners asked.")
        due = list(accounts.due_for_purge())
        purged = 0
        for account in tqdm(due, desc="purging", unit="account", file=BarStream(self.stderr)):
            purged += accounts.purge(account)
        self.stdout.write(f"{len(due)} deleted accounts due: {purged} purged.")
