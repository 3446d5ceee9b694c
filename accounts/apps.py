from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Signing up and signing in: sign-up (and its limit per address), who sign-in
    throttling counts, and the pages around Django's own auth views."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
