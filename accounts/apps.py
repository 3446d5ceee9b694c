from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Signing up and signing in: sign-up (and its limit per address), who sign-in
    throttling counts, the pages around Django's own auth views, and what a user does
    with their account: delete it, take their data with them."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from syncstore import retry

        from . import dataexport, deletion

        # Accounts whose owners asked for deletion are deleted, and purged, once their
        # grace period is over: on the periodic pass that also purges deleted accounts.
        # Zips of data exports nobody fetched are deleted on it too.
        retry.every_pass(deletion.delete_due_accounts)
        retry.every_pass(dataexport.expire_old_exports)
