from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from projects.urls import api_urlpatterns as projects_api
from projects.views import media_file

from . import accounts, health, observability
from .jsonapi import install_error_handlers

urlpatterns = [
    path("", include("projects.urls")),
    path("api/", include(projects_api)),
    path("api/", include("syncstore.urls")),
    path("api/", include("exports.urls")),
    path("media/<path:name>", media_file, name="media"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
]

install_error_handlers(globals())
