"""Export jobs as a staff console: filter by status, see progress and errors, retry or
cancel. Jobs are written by the runner; the admin never edits a row directly."""

from django.contrib import admin, messages
from django.utils.html import format_html

from . import jobs
from .models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["css/admin-badges.css"]}

    list_display = (
        "short_id", "user", "project_name", "kind", "status_badge", "progress", "phase",
        "attempts", "created_at", "finished_at",
    )  # fmt: skip
    list_filter = ("status", "kind", "retryable")
    search_fields = ("user__username", "project_name", "id")
    list_select_related = ("user",)
    ordering = ("-created_at",)
    actions = ("retry_jobs", "cancel_jobs")
    readonly_fields = [f.name for f in ExportJob._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="job")
    def short_id(self, job):
        return str(job.id)[:8]

    @admin.display(description="status", ordering="status")
    def status_badge(self, job):
        return format_html(
            # Colours in static/css/admin-badges.css: the CSP refuses style attributes.
            '<span class="status-badge export-{}">{}</span>',
            job.status,
            job.status,
        )

    @admin.action(description="Retry the selected failed exports", permissions=["change"])
    def retry_jobs(self, request, queryset):
        for job in queryset:
            try:
                jobs.retry(job)
                self.message_user(request, f"Export {job} queued again.", messages.SUCCESS)
            except jobs.ExportRefused as exc:
                self.message_user(request, f"Export {job}: {exc.message}", messages.WARNING)

    @admin.action(description="Cancel the selected exports", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        for job in queryset.filter(status__in=ExportJob.ACTIVE):
            jobs.cancel(job)
            self.message_user(request, f"Export {job}: cancel requested.", messages.SUCCESS)
