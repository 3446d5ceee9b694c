from django.contrib import admin

from .models import SignupAttempt


@admin.register(SignupAttempt)
class SignupAttemptAdmin(admin.ModelAdmin):
    """Staff lift a sign-up limit by deleting an address's rows."""

    list_display = ("address", "at")
    list_filter = ("at",)
    search_fields = ("address",)
    date_hierarchy = "at"
