from django.db import models
from django.utils import timezone


class SignupAttempt(models.Model):
    """One sign-up form sent, by address, in the central database: every instance counts
    the same ones (``accounts.signup.too_many_signups``). Rows older than the window are
    deleted as new ones come."""

    address = models.GenericIPAddressField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["address", "at"])]

    def __str__(self):
        return f"sign-up from {self.address} at {self.at:%Y-%m-%d %H:%M:%S}"
