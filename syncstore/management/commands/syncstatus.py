"""Where each user's data stands: the committed version and this machine's working copy.

    manage.py syncstatus                  # a table of every known user
    manage.py syncstatus --problems       # only failed, in conflict or with unpushed writes
    manage.py syncstatus --user alice --json

"Known" users have a registry row or a working copy on this machine. The ``dirty``
column is about this machine's copy: other machines have their own.
"""

import json
from datetime import UTC, datetime

from django.core.management.base import BaseCommand
from django.utils.text import Truncator

from syncstore import sync, workingcopy
from syncstore.management import usernames, users_from_options
from syncstore.models import SyncState

Status = SyncState.Status

COLUMNS = (
    "id",
    "username",
    "version",
    "status",
    "dirty",
    "failures",
    "last error",
    "committed (UTC)",
)
ERROR_WIDTH = 48


class Command(BaseCommand):
    help = "Show the sync state of users' data: committed version, status, unpushed writes."

    def add_arguments(self, parser):
        parser.add_argument(
            "--user",
            action="append",
            dest="users",
            metavar="ID_OR_USERNAME",
            help="only this user (repeatable); default: every known user",
        )
        parser.add_argument(
            "--problems",
            action="store_true",
            help="only users whose last push failed, in conflict, or with unpushed writes here",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, **options):
        user_ids = users_from_options(options["users"], everyone=not options["users"])
        entries = [entry for entry in _entries(user_ids) if not options["problems"] or _bad(entry)]
        if options["json"]:
            self.stdout.write(json.dumps({"users": entries}, indent=2))
        elif entries:
            self._table(entries)
        else:
            self.stdout.write("No problems." if options["problems"] else "No users known.")

    def _table(self, entries):
        rows = [
            (
                str(e["user_id"]),
                e["username"] or "-",
                str(e["version"]),
                e["status"],
                "yes" if e["dirty"] else "no",
                str(e["failure_count"]),
                _short(e["last_error"]) or "-",
                _utc(e["committed_at"]),
            )
            for e in entries
        ]
        widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        self.stdout.write(_line(COLUMNS, widths))
        self.stdout.write(_line(["-" * w for w in widths], widths))
        for row, entry in zip(rows, entries, strict=True):
            self.stdout.write(_line(row, widths), style_func=self._style(entry))

    def _style(self, entry):
        if entry["status"] == Status.FAILED:
            return self.style.ERROR
        if entry["status"] in (Status.CONFLICT, Status.PENDING):
            return self.style.WARNING
        return None


def _entries(user_ids) -> list[dict]:
    rows = {row.user_id: row for row in SyncState.objects.filter(user_id__in=user_ids)}
    names = usernames(user_ids)
    entries = []
    for user_id in user_ids:
        row = rows.get(user_id)
        state = workingcopy.read_state(user_id)
        entries.append(
            {
                "user_id": user_id,
                "username": names.get(user_id),
                "version": row.version if row else 0,
                "status": str(sync.status_of(user_id, row)["status"]) if row else _status(state),
                "registry_status": str(row.status) if row else None,
                "dirty": state.dirty,
                "dirty_since": state.dirty_since,
                "local_version": state.base_version,
                "failure_count": row.failure_count if row else 0,
                "last_error": row.last_error if row else "",
                "committed_at": _iso(row.committed_at) if row else None,
                "last_attempt_at": _iso(row.last_attempt_at) if row else None,
                "size_bytes": row.size_bytes if row else 0,
                "object_key": row.object_key if row else "",
            }
        )
    return entries


def _status(state) -> str:
    # No registry row: nothing committed yet, so only the local copy can say anything.
    return Status.PENDING if state.dirty else Status.OK


def _bad(entry) -> bool:
    return entry["dirty"] or entry["status"] in (Status.FAILED, Status.CONFLICT)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _utc(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(text: str) -> str:
    return Truncator(" ".join(text.split())).chars(ERROR_WIDTH)


def _line(cells, widths) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
