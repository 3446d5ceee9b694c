"""The sync registry as a staff console: where each user's data stands, and the
operations that repair it (force push, force pull, verify, restore a conflict copy).

The registry row is the commit point of every snapshot, written only by the sync code
with a compare-and-set on ``version``; an admin form saving the row would write back
whatever version it read and could undo a commit. So nothing here edits a row: no add,
no change form, no delete. Seeing needs the model's "view" (or "change") permission;
running an operation needs "change".

"This machine" below is the web machine serving the admin: working copies are local
files, other machines have their own.
"""

from datetime import UTC, datetime

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from . import leases, operations, sync, userdb, workingcopy
from .models import SyncState
from .snapshots import SnapshotCorrupt
from .stores import SnapshotMissing, StoreError

Status = SyncState.Status

ERROR_WIDTH = 60
# What an operation can run into; reported to the operator as a message, not a 500.
OPERATION_ERRORS = (
    leases.LeaseTimeout,
    leases.LeaseUnavailable,
    sync.SyncUnavailable,
    StoreError,
    SnapshotMissing,
    SnapshotCorrupt,
)
NO_LOCAL_COPY = "no working copy on this machine"


class UnpushedHereFilter(admin.SimpleListFilter):
    title = "unpushed writes on this machine"
    parameter_name = "unpushed"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(user_id__in=workingcopy.dirty_user_ids())
        if self.value() == "no":
            return queryset.exclude(user_id__in=workingcopy.dirty_user_ids())
        return queryset


@admin.register(SyncState)
class SyncStateAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["css/admin-badges.css"]}

    list_display = (
        "user",
        "version",
        "status_badge",
        "size",
        "committed_at",
        "failure_count",
        "short_error",
        "unpushed_here",
    )
    list_filter = ("status", UnpushedHereFilter)
    search_fields = ("user__username",)
    list_select_related = ("user",)
    ordering = ("user__username",)
    fields = readonly_fields = (
        "user",
        "version",
        "status_badge",
        "object_key",
        "size",
        "checksum",
        "committed_at",
        "last_attempt_at",
        "failure_count",
        "last_error",
        "updated_at",
        "lease_holder",
        "lease_expires_at",
        "fence",
        "incarnation",
        "working_copy",
        "conflicts_link",
    )
    actions = ("force_push", "force_pull", "verify_snapshot", "acknowledge_conflict")

    # --- Permissions: a console, never an editor ------------------------------------

    def has_add_permission(self, request):
        return False  # rows come into being with a user's first push

    def has_change_permission(self, request, obj=None):
        return False  # see the module docstring: saving a row could undo a commit

    def has_delete_permission(self, request, obj=None):
        # No row would mean "version 0, a new user": a new machine would start empty.
        return False

    def has_sync_permission(self, request):
        """May run the operations (actions, restoring a conflict copy)."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    # --- Columns ------------------------------------------------------------------------

    def _reported(self, obj) -> dict:
        # The changelist asks several columns per row; read the copy's state once.
        if not hasattr(obj, "_reported_status"):
            obj._reported_status = sync.status_of(obj.user_id, obj)
        return obj._reported_status

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        status = self._reported(obj)["status"]
        return format_html(
            # Colours in static/css/admin-badges.css: the CSP refuses style attributes.
            '<span class="status-badge sync-{}">{}</span>',
            status,
            status,
        )

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        return filesizeformat(obj.size_bytes) if obj.version else "-"

    @admin.display(description="last error")
    def short_error(self, obj):
        if not obj.last_error:
            return "-"
        short = Truncator(" ".join(obj.last_error.split())).chars(ERROR_WIDTH)
        return format_html('<span title="{}">{}</span>', obj.last_error, short)

    @admin.display(description="unpushed here", boolean=True)
    def unpushed_here(self, obj):
        if not userdb.database_path(obj.user_id).exists():
            return None  # shown as "unknown": no copy on this machine
        return self._reported(obj)["dirty"]

    @admin.display(description="working copy on this machine")
    def working_copy(self, obj):
        if not userdb.database_path(obj.user_id).exists():
            return NO_LOCAL_COPY
        state = workingcopy.read_state(obj.user_id)
        text = f"at version {state.base_version}"
        if state.dirty:
            text += f", unpushed writes since {state.dirty_since or 'an unknown time'}"
        return text

    @admin.display(description="conflict copies")
    def conflicts_link(self, obj):
        url = reverse(f"{self.admin_site.name}:syncstore_syncstate_conflicts", args=[obj.pk])
        return format_html('<a href="{}">List and restore conflict copies</a>', url)

    # --- Actions ------------------------------------------------------------------------

    @admin.action(
        description="Force push: commit this machine's working copy as a new version",
        permissions=["sync"],
    )
    def force_push(self, request, queryset):
        self._operate(request, queryset, "Force push", _force_push)

    @admin.action(
        description="Force pull: replace this machine's copy with the committed version",
        permissions=["sync"],
    )
    def force_pull(self, request, queryset):
        self._operate(request, queryset, "Force pull", operations.force_pull)

    @admin.action(description="Verify the committed snapshot", permissions=["sync"])
    def verify_snapshot(self, request, queryset):
        self._operate(request, queryset, "Verify", operations.verify)

    @admin.action(description="Mark the conflict as seen", permissions=["sync"])
    def acknowledge_conflict(self, request, queryset):
        names = []
        for row in queryset.filter(status=Status.CONFLICT).select_related("user"):
            sync.acknowledge(row.user_id)
            self.log_change(request, row, "Marked the conflict as seen")
            names.append(row.user.get_username())
        if names:
            self.message_user(
                request, f"Conflict marked as seen for {', '.join(names)}.", messages.SUCCESS
            )
        else:
            self.message_user(request, "None of the selected users is in conflict.", messages.INFO)

    def _operate(self, request, queryset, label, operation):
        done = []
        for row in queryset.select_related("user"):
            who = row.user.get_username()
            try:
                result = operation(row.user_id)
            except OPERATION_ERRORS as exc:
                result = sync.SyncResult(row.user_id, Status.FAILED, row.version, str(exc))
            summary = f"{result.status} v{result.version}"
            if result.error:
                summary += f": {result.error}"
            self.log_change(request, row, f"{label}: {summary}"[:2000])
            if result.ok and result.error != NO_LOCAL_COPY:
                note = f" ({result.error})" if result.error else ""
                done.append(f"{who} v{result.version}{note}")
            else:
                self.message_user(request, f"{label} of {who}: {summary}", messages.WARNING)
        if done:
            self.message_user(request, f"{label}: ok for {', '.join(done)}.", messages.SUCCESS)

    # --- Conflict copies ------------------------------------------------------------------

    def get_urls(self):
        # Before the defaults: their "<path:object_id>/" would swallow this URL.
        return [
            path(
                "<int:user_id>/conflicts/",
                self.admin_site.admin_view(self.conflicts_view),
                name="syncstore_syncstate_conflicts",
            ),
            *super().get_urls(),
        ]

    def conflicts_view(self, request, user_id):
        """List a user's conflict copies; POST ``name`` restores one as the next version."""
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        row = get_object_or_404(SyncState.objects.select_related("user"), pk=user_id)
        if request.method == "POST":
            if not self.has_sync_permission(request):
                raise PermissionDenied
            self._restore(request, row, request.POST.get("name", ""))
            return redirect(request.path)  # post/redirect/get: a reload cannot restore twice
        copies = [_describe(copy) for copy in operations.conflict_copies(user_id)]
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": row,
            "title": f"Conflict copies of {row.user.get_username()}",
            "copies": copies,
            "can_restore": self.has_sync_permission(request),
            "change_url": reverse(
                f"{self.admin_site.name}:syncstore_syncstate_change", args=[row.pk]
            ),
        }
        return TemplateResponse(request, "admin/syncstore/syncstate/conflicts.html", context)

    def _restore(self, request, row, name):
        who = row.user.get_username()
        if name not in {copy["name"] for copy in operations.conflict_copies(row.user_id)}:
            self.message_user(request, f"{who} has no conflict copy {name!r}.", messages.ERROR)
            return
        try:
            result = operations.restore_conflict_copy(row.user_id, name)
        except (*OPERATION_ERRORS, ValueError) as exc:
            self.message_user(request, f"Could not restore {name}: {exc}", messages.ERROR)
            return
        self.log_change(request, row, f"Restored conflict copy {name}: {result.status}")
        if result.ok:
            self.message_user(
                request,
                f"Restored {name} for {who}: it is now version {result.version}.",
                messages.SUCCESS,
            )
        else:
            # The restored data is in the working copy (dirty) and is pushed on retry.
            self.message_user(
                request,
                f"Restored {name} for {who} on this machine, but saving it reported "
                f"{result.status}: {result.error}",
                messages.WARNING,
            )


def _force_push(user_id: int) -> sync.SyncResult:
    if not userdb.database_path(user_id).exists():
        # Binding would download the committed snapshot only to commit it again.
        row = sync.registry_row(user_id)
        return sync.SyncResult(user_id, Status.OK, row.version if row else 0, NO_LOCAL_COPY)
    return operations.force_push(user_id)


def _describe(copy: dict) -> dict:
    """Add what a conflict copy's name tells: when it was kept and the version it was on.

    Names look like ``20250101T120000-base3-1a2b3c4d.sqlite3.z`` (sync._preserve_conflict).
    """
    stamp, _, rest = copy["name"].partition("-")
    base = rest.split("-", 1)[0]
    try:
        kept_at = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        kept_at = None
    return {
        **copy,
        "kept_at": kept_at,
        "base_version": int(base[4:]) if base.startswith("base") and base[4:].isdigit() else None,
    }
