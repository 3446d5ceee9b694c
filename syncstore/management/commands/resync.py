"""Push, pull or verify users' data against the snapshot store, from the command line.

    manage.py resync --all                      # commit every dirty copy on this machine
    manage.py resync --user alice --pull        # bring alice's copy up to the committed version
    manage.py resync --all --verify             # download and check every committed snapshot
    manage.py resync --user 3 --push --force    # commit the copy even with no recorded write
    manage.py resync --user 3 --pull --force    # replace the copy (unpushed writes kept aside)

One line per user on stdout, a progress bar on stderr, and exit status 1 when any user
failed or is in conflict, so cron jobs and scripts notice.
"""

import logging

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from syncstore import leases, operations, sync, userdb, workingcopy
from syncstore.binding import bound_to_user
from syncstore.management import BarStream, usernames, users_from_options

logger = logging.getLogger(__name__)

Status = sync.Status
SyncResult = sync.SyncResult

ACTIONS = ("push", "pull", "verify")
PROGRESS_LABELS = {"push": "Pushing", "pull": "Pulling", "verify": "Verifying"}
# Expected per-user failures: reported, and the command goes on with the next user.
EXPECTED_ERRORS = (leases.LeaseTimeout, leases.LeaseUnavailable, sync.SyncUnavailable)


class Command(BaseCommand):
    help = (
        "Push dirty working copies (default), pull the committed version (--pull) or "
        "verify committed snapshots (--verify) for some users (--user) or all (--all)."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group()
        who.add_argument(
            "--user",
            action="append",
            dest="users",
            metavar="ID_OR_USERNAME",
            help="a user id or username (repeat for several users)",
        )
        who.add_argument(
            "--all",
            action="store_true",
            help="every user with a registry row or a working copy on this machine",
        )
        what = parser.add_mutually_exclusive_group()
        what.add_argument(
            "--push", action="store_true", help="commit dirty working copies (the default)"
        )
        what.add_argument(
            "--pull", action="store_true", help="bring working copies up to the committed version"
        )
        what.add_argument(
            "--verify",
            action="store_true",
            help="download each committed snapshot and check its checksum and integrity",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help=(
                "with --push: commit the working copy even if no write was recorded; with "
                "--pull: replace the working copy (unpushed writes are kept as a conflict copy)"
            ),
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=None,
            metavar="SECONDS",
            help="how long to wait for a user's write lease (default: LEASE_WAIT_SECONDS)",
        )

    def handle(self, *args, **options):
        action = self._action(options)
        if not options["users"] and not options["all"]:
            raise CommandError("Say which users: --user ID_OR_USERNAME (repeatable) or --all.")
        if options["users"] and options["all"]:
            raise CommandError("Give either --user or --all, not both.")
        if options["wait"] is not None and options["wait"] < 0:
            raise CommandError("--wait must be 0 or more seconds.")
        user_ids = users_from_options(options["users"], options["all"])
        if not user_ids:
            self.stdout.write("No users to sync.")
            return
        names = usernames(user_ids)

        counts = {status: 0 for status in Status.values}
        with tqdm(
            total=len(user_ids),
            desc=PROGRESS_LABELS[action],
            unit="user",
            file=BarStream(self.stderr),
            disable=options["verbosity"] == 0,
        ) as bar:
            for user_id in user_ids:
                result = self._run_one(action, user_id, options["force"], options["wait"])
                counts[result.status] = counts.get(result.status, 0) + 1
                bar.clear()  # the bar shares the terminal with the result lines
                self._report(user_id, names.get(user_id), result)
                bar.update(1)

        summary = ", ".join(
            f"{counts[status]} {status}"
            for status in Status.values
            if counts[status] or status == Status.OK
        )
        self.stdout.write(f"{len(user_ids)} user{'s' * (len(user_ids) != 1)}: {summary}.")
        troubled = counts[Status.FAILED] + counts[Status.CONFLICT]
        if troubled:
            raise CommandError(f"{troubled} of {len(user_ids)} users failed or are in conflict.")

    def _action(self, options) -> str:
        # call_command(..., push=True, pull=True) bypasses argparse's exclusive group.
        chosen = [action for action in ACTIONS if options.get(action)]
        if len(chosen) > 1:
            raise CommandError("Choose one action: --push, --pull or --verify.")
        action = chosen[0] if chosen else "push"
        if options["force"] and action == "verify":
            raise CommandError("--force goes with --push or --pull, not --verify.")
        return action

    def _run_one(self, action, user_id, force, wait) -> SyncResult:
        try:
            if action == "push":
                return self._push(user_id, force, wait)
            if action == "pull":
                return self._pull(user_id, force, wait)
            return operations.verify(user_id)
        except EXPECTED_ERRORS as exc:
            return SyncResult(user_id, Status.FAILED, _committed_version(user_id), str(exc))
        except Exception as exc:
            # One user's surprise must not stop the others; the traceback goes to the log.
            logger.exception("resync --%s of user %s failed", action, user_id)
            return SyncResult(
                user_id,
                Status.FAILED,
                _committed_version(user_id),
                f"unexpected error: {type(exc).__name__}: {exc}",
            )

    def _push(self, user_id, force, wait) -> SyncResult:
        if not userdb.database_path(user_id).exists():
            # Nothing here to push (forced or not): binding would download the committed
            # snapshot only to find it clean, or, forced, to commit the same data again.
            row = sync.registry_row(user_id)
            status = sync.status_of(user_id, row)["status"]
            return SyncResult(user_id, status, _version(row), "no working copy on this machine")
        # The outer lease honours --wait; the sync functions' own lease() is re-entrant.
        with leases.lease(user_id, wait=wait), bound_to_user(user_id):
            return operations.force_push(user_id) if force else sync.push(user_id)

    def _pull(self, user_id, force, wait) -> SyncResult:
        if force:
            with leases.lease(user_id, wait=wait):
                return operations.force_pull(user_id)
        before = workingcopy.read_state(user_id)
        with bound_to_user(user_id):  # creates the copy on this machine if it is missing
            row = sync.ensure_fresh(user_id)
        version = _version(row)
        if before.dirty and before.base_version < version:
            # ensure_fresh kept the unpushed writes aside as a conflict copy (and marked
            # the account in conflict); the report line says so for this user.
            return SyncResult(
                user_id,
                Status.CONFLICT,
                version,
                f"unpushed writes based on version {before.base_version} were kept as a "
                f"conflict copy; the working copy now holds version {version}",
            )
        return SyncResult(user_id, sync.status_of(user_id, row)["status"], version)

    def _report(self, user_id, username, result: SyncResult) -> None:
        who = f"user {user_id} ({username})" if username else f"user {user_id}"
        error = result.error
        if result.status in (Status.FAILED, Status.CONFLICT) and not error:
            # e.g. a push with nothing to do on a user whose last attempt failed.
            row = sync.registry_row(user_id)
            error = (row.last_error if row else "") or "see the sync registry"
        if result.status == Status.OK:
            line = f"{who}: ok v{result.version}" + (f" ({error})" if error else "")
            style = self.style.SUCCESS
        elif result.status == Status.PENDING:
            line = f"{who}: pending v{result.version}: " + (
                error or "unpushed writes remain on this machine (resync --push)"
            )
            style = self.style.WARNING
        elif result.status == Status.CONFLICT:
            line, style = f"{who}: conflict: {error}", self.style.WARNING
        else:
            line, style = f"{who}: {result.status}: {error}", self.style.ERROR
        self.stdout.write(line, style_func=style)


def _version(row) -> int:
    return row.version if row is not None else 0


def _committed_version(user_id: int) -> int:
    try:
        return _version(sync.registry_row(user_id))
    except Exception:  # the report must not fail because the database did
        return 0
