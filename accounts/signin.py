"""Signing in: the form, and who is signing in as sign-in throttling (django-axes)
counts them."""

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render

from . import deletion


class SignInForm(AuthenticationForm):
    """Django's sign-in form, except that an account waiting for deletion may sign in:
    that is how its owner keeps it (``accounts.deletion``). Accounts switched off by
    staff stay refused, with Django's message."""

    def confirm_login_allowed(self, user):
        if not user.is_active and deletion.pending(user):
            return
        super().confirm_login_allowed(user)


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or behind ``TRUSTED_PROXY_COUNT`` proxies the
    address the outermost of them saw.

    Each proxy appends the address it received the request from to X-Forwarded-For, so
    the last ``TRUSTED_PROXY_COUNT`` entries are ours and the one they start with is the
    client's. Anything to the left of it was written by the client and proves nothing;
    trusting it would let a guesser pick a new address for every attempt.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    return hops[-count] if len(hops) >= count else remote


def locked_out(request, original_response=None, credentials=None):
    """The page a throttled sign-in gets (429): what happened, for how long, and that
    nothing of the user's was touched."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    wait = f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"
    return render(request, "registration/locked_out.html", {"wait": wait}, status=429)
