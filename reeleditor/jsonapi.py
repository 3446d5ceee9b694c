"""The JSON API's conventions, shared by every app's API views.

Errors are always ``{"error": <human message>, "code": <machine code>}`` with a fitting
4xx/5xx status; a client never sees a stack trace or an HTML error page.
"""

import functools
import json
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponseForbidden, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.csrf import csrf_failure as django_csrf_failure

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Raise from an API view (or the domain code it calls) to answer with an error."""

    def __init__(self, message: str, code: str, status: int = 400, **extra):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.extra = extra

    def response(self) -> JsonResponse:
        return error_response(self.message, self.code, self.status, **self.extra)


def error_response(message: str, code: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": message, "code": code, **extra}, status=status)


def api_view(*methods: str):
    """Allow only ``methods`` and turn every failure into a JSON error response."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = error_response(
                    f"{request.method} is not allowed here.", "method_not_allowed", 405
                )
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return exc.response()
            except Http404:
                return error_response("Not found.", "not_found", 404)
            except PermissionDenied:
                return error_response("You may not do that.", "forbidden", 403)
            except RequestDataTooBig:
                return error_response("The request body is too large.", "body_too_large", 413)
            except (SuspiciousOperation, MultiPartParserError):
                return error_response("The request could not be read.", "bad_request", 400)
            except Exception:
                logger.exception("Unhandled error in %s %s", request.method, request.path)
                return error_response("Something went wrong on our side.", "internal_error", 500)

        return wrapper

    return decorator


def json_body(request) -> dict:
    """The request body as a JSON object, or ApiError 400."""
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError("The request body is not valid JSON.", "invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError("The request body must be a JSON object.", "invalid_json")
    return data


SECURE_COOKIES_OVER_HTTP = (
    "This site sends its cookies over HTTPS only (SECURE_COOKIES is on, the default when "
    "DJANGO_DEBUG is false), but this request came over plain HTTP, so the browser never "
    "sent the CSRF cookie back. Open the site with https:// (behind a TLS proxy, make it "
    "send X-Forwarded-Proto), or set SECURE_COOKIES=false for a plain-HTTP deployment."
)


def csrf_failure(request, reason=""):
    # The common production mistake: secure-only cookies on a plain-HTTP deployment
    # make every form fail with a bare CSRF page; say what is wrong instead.
    insecure = settings.CSRF_COOKIE_SECURE and not request.is_secure()
    if request.path.startswith("/api/"):
        message = (
            SECURE_COOKIES_OVER_HTTP
            if insecure
            else "CSRF check failed: send the csrftoken cookie's value in X-CSRFToken."
        )
        return error_response(message, "csrf_failed", 403)
    if insecure:
        return HttpResponseForbidden(SECURE_COOKIES_OVER_HTTP, content_type="text/plain")
    return django_csrf_failure(request, reason=reason)


def _api_or_page(page_handler, message, code, status):
    def handler(request, exception=None):
        if request.path.startswith("/api/"):
            return error_response(message, code, status)
        if exception is None:
            return page_handler(request)
        return page_handler(request, exception)

    return handler


def install_error_handlers(urlconf_globals):
    """Set handler400/403/404/500 so /api/ paths get JSON and pages get templates."""
    from django.views import defaults

    urlconf_globals["handler400"] = _api_or_page(
        defaults.bad_request, "Bad request.", "bad_request", 400
    )
    urlconf_globals["handler403"] = _api_or_page(
        defaults.permission_denied, "Forbidden.", "forbidden", 403
    )
    urlconf_globals["handler404"] = _api_or_page(
        defaults.page_not_found, "Not found.", "not_found", 404
    )
    urlconf_globals["handler500"] = _api_or_page(
        defaults.server_error, "Something went wrong on our side.", "internal_error", 500
    )
