"""The public side of a share link: its page, its video and its poster. No account.

Each route finds the live link by its token first; an unknown, revoked or expired
token answers the same 404, and only the link's own two files can ever be reached
(``projects.media.serve`` also checks that they lie under the link's owner's prefix).
"""

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from projects import media

from . import links, ratelimit

TOO_MANY = "Too many requests from your address: wait a minute and try again."


def _private(response):
    # The token is in the URL: never sent on as a Referer, never indexed.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _link_or_404(request, token):
    link = links.find_live(token)
    if link is None:
        raise Http404("This link does not work (any more).")
    return link


def _limited(view):
    def wrapper(request, token):
        if not ratelimit.allow(request):
            return _private(HttpResponse(TOO_MANY, status=429, content_type="text/plain"))
        return _private(view(request, token))

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@login_not_required
@require_safe
@_limited
def page(request, token):
    """The shared video's page, with Open Graph tags so the link unfurls in chat apps."""
    link = links.find_live(token)
    if link is None:
        return render(request, "sharing/gone.html", status=404)
    video_url = request.build_absolute_uri(reverse("share-video", args=[token]))
    poster_url = (
        request.build_absolute_uri(reverse("share-poster", args=[token])) if link.poster else ""
    )
    context = {"link": link, "video_url": video_url, "poster_url": poster_url,
               "page_url": request.build_absolute_uri()}  # fmt: skip
    return render(request, "sharing/page.html", context)


@login_not_required
@require_safe
@_limited
def video(request, token):
    """The video itself: with HTTP Range from a local folder, or a short-lived S3 link."""
    link = _link_or_404(request, token)
    return media.serve(request, link.file, allowed_user_ids={link.user_id})


@login_not_required
@require_safe
@_limited
def poster(request, token):
    link = _link_or_404(request, token)
    if not link.poster:
        raise Http404("This video has no poster.")
    return media.serve(request, link.poster, allowed_user_ids={link.user_id})
