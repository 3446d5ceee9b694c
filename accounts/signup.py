"""Sign-up, limited per address; sign-in, sign-out and the password views are Django's own.

The limit (``SIGNUP_LIMIT`` forms sent per ``SIGNUP_WINDOW_SECONDS`` from one address)
stops a script from making accounts by the thousand; it is counted in the central
database (``SignupAttempt``), so it holds across instances and processes.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .models import SignupAttempt
from .signin import client_ip


class SignupForm(UserCreationForm):
    """Username and password, and an email address for password reset links."""

    email = forms.EmailField(
        required=False, help_text="Optional: where a link to reset a forgotten password goes."
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


def too_many_signups(address: str) -> bool:
    """Count this form sent from ``address``; True when the window's limit is passed.

    Counted before it is checked, so refused attempts keep counting (a script that keeps
    trying stays refused). Two instances racing may let one more through: a soft limit.
    """
    now = timezone.now()
    window_start = now - timedelta(seconds=settings.SIGNUP_WINDOW_SECONDS)
    SignupAttempt.objects.filter(at__lt=window_start).delete()
    SignupAttempt.objects.create(address=address, at=now)
    recent = SignupAttempt.objects.filter(address=address, at__gte=window_start).count()
    return recent > settings.SIGNUP_LIMIT


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("projects:index")
    if request.method == "POST" and too_many_signups(client_ip(request)):
        minutes = max(1, settings.SIGNUP_WINDOW_SECONDS // 60)
        return render(request, "registration/signup_limited.html", {"minutes": minutes}, status=429)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="accounts.deletion.AccountBackend")
        return redirect("projects:index")
    return render(request, "registration/signup.html", {"form": form})
