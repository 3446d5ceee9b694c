"""Sign-up; sign-in, sign-out and the password views are Django's own."""

from django import forms
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods


class SignupForm(UserCreationForm):
    """Username and password, and an email address for password reset links."""

    email = forms.EmailField(
        required=False, help_text="Optional: where a link to reset a forgotten password goes."
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("projects:index")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("projects:index")
    return render(request, "registration/signup.html", {"form": form})
