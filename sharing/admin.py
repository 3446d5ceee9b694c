"""Share links in the admin: who shared what, until when; staff can revoke a link."""

from django.contrib import admin, messages
from django.utils import timezone

from .models import ShareLink


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "status", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("title", "user__username")
    # The token is the link's secret: not shown, not searchable.
    exclude = ("token",)
    readonly_fields = (
        "user", "project_id", "final_video_id", "title", "file", "poster", "width", "height",
        "duration", "created_at", "expires_at", "revoked_at",
    )  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected links")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} link(s) revoked.", messages.SUCCESS)
