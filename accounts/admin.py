from django.contrib import admin

from . import deletion
from .models import DataExport, DeletionRequest, SignupAttempt


@admin.register(SignupAttempt)
class SignupAttemptAdmin(admin.ModelAdmin):
    """Staff lift a sign-up limit by deleting an address's rows."""

    list_display = ("address", "at")
    list_filter = ("at",)
    search_fields = ("address",)
    date_hierarchy = "at"


@admin.register(DeletionRequest)
class DeletionRequestAdmin(admin.ModelAdmin):
    """Accounts their owners asked to delete, switched off until the grace period ends.

    Deleting a row here does not bring an account back (the owner signs in for that);
    the list is for answering "when will my data be gone?"."""

    list_display = ("user", "requested_at", "purge_on")
    search_fields = ("user__username", "user__email")
    readonly_fields = ("user", "requested_at")

    @admin.display(description="purged on")
    def purge_on(self, obj):
        return deletion.purge_date(obj.requested_at)

    def has_add_permission(self, request):
        return False


@admin.register(DataExport)
class DataExportAdmin(admin.ModelAdmin):
    """Data exports, for support ("my export failed"): status only. The zip is its
    owner's: the admin neither links nor serves it."""

    list_display = ("id", "user", "status", "percent", "size", "created_at", "downloaded_at")
    list_filter = ("status",)
    search_fields = ("user__username",)
    exclude = ("file",)
    readonly_fields = [f.name for f in DataExport._meta.fields if f.name != "file"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
