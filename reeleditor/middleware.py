from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired

from .jsonapi import error_response


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every page and API needs a signed-in user; the API answers 401 JSON, not a redirect."""

    def handle_no_permission(self, request, view_func):
        if request.path.startswith("/api/"):
            return error_response("Sign in to use the API.", "not_authenticated", 401)
        return super().handle_no_permission(request, view_func)
