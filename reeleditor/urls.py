from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import signin, signup
from games.urls import api_urlpatterns as games_api
from projects.urls import api_urlpatterns as projects_api
from projects.views import media_file
from reframing.urls import api_urlpatterns as reframing_api
from sharing.urls import api_urlpatterns as sharing_api
from syncstore.urls import history_urlpatterns

from . import csp, health, observability
from .jsonapi import install_error_handlers

urlpatterns = [
    path("", include("projects.urls")),
    path("", include("games.urls")),
    path("api/", include(projects_api)),
    path("api/", include(games_api)),
    path("api/", include(reframing_api)),
    path("api/", include(sharing_api)),
    path("", include("sharing.urls")),
    path("api/", include("syncstore.urls")),
    path("history/", include((history_urlpatterns, "history"))),
    path("api/", include("exports.urls")),
    path("media/<path:name>", media_file, name="media"),
    path("accounts/signup/", signup.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=signin.SignInForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Django's own password views (templates/registration/password_*.html): a reset
    # link by email (EMAIL_* settings; the console in the embedded default), valid once.
    path("accounts/password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path(
        "accounts/password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"
    ),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # The account page: delete my account, export my data (accounts/views.py).
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    path(csp.REPORT_PATH.lstrip("/"), csp.report, name="csp-report"),
]

install_error_handlers(globals())
