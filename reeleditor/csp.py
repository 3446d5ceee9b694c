"""A strict Content-Security-Policy on every response, and the endpoint its reports go to.

Scripts and styles come from this site only; an inline ``<script>`` or ``<style>`` runs
only with the request's nonce (``{{ csp_nonce }}`` in templates, from
``reeleditor.csp.nonce`` in the context processors). Media, images and fetches may also
reach the object store that presigned media links point to (``CSP_MEDIA_ORIGINS``), and
fetches the WebSocket of this host. Nothing may frame the app, and forms only post here.

Browsers report a violation to ``/csp-report``: it is logged and counted
(``reeleditor_csp_violations_total``), so a page that breaks the policy shows up in the
logs and metrics rather than only as a broken button in one user's browser.
"""

import json
import logging
import secrets

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from prometheus_client import Counter

logger = logging.getLogger(__name__)

HEADER = "Content-Security-Policy"
REPORT_PATH = "/csp-report"
# A report is a few hundred bytes; anything much larger is not one.
MAX_REPORT_BYTES = 16 * 1024

VIOLATIONS = Counter(
    "reeleditor_csp_violations", "Content-Security-Policy violations reported by browsers."
)


def policy(nonce: str, host: str) -> str:
    media = " ".join(settings.CSP_MEDIA_ORIGINS)
    # CSP3 lets 'self' match ws(s) on the same host, but not every browser does; name it.
    sockets = f"ws://{host} wss://{host}" if host else ""
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' 'nonce-{nonce}'",
        "style-src": f"'self' 'nonce-{nonce}'",
        # data: for the empty favicon; blob: for frames grabbed from a playing video.
        "img-src": f"'self' data: blob: {media}",
        "media-src": f"'self' blob: {media}",
        "connect-src": f"'self' {sockets} {media}",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "report-uri": REPORT_PATH,
    }
    return "; ".join(f"{name} {' '.join(value.split())}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    """Gives each request a nonce (``request.csp_nonce``) and each response the policy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = SimpleLazyObject(lambda: secrets.token_urlsafe(18))
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = policy(str(request.csp_nonce), _host(request))
        return response


def _host(request) -> str:
    try:
        return request.get_host()
    except Exception:  # a disallowed Host: the response is an error page anyway
        return ""


def nonce(request) -> dict:
    """Template context processor: ``{{ csp_nonce }}`` for the rare inline block."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}


@csrf_exempt  # browsers send reports without a token, from any page of this site
@login_not_required
@require_POST
def report(request):
    body = request.read(MAX_REPORT_BYTES + 1)
    if len(body) > MAX_REPORT_BYTES:
        return HttpResponse(status=413)
    try:
        violation = json.loads(body or b"{}").get("csp-report", {})
    except (ValueError, AttributeError):
        return HttpResponse(status=400)
    if not isinstance(violation, dict):
        return HttpResponse(status=400)
    VIOLATIONS.inc()
    logger.warning(
        "CSP violation on %s: %s blocked %s",
        str(violation.get("document-uri", ""))[:200],
        str(violation.get("violated-directive") or violation.get("effective-directive", ""))[:100],
        str(violation.get("blocked-uri", ""))[:200],
    )
    return HttpResponse(status=204)
