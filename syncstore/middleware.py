"""Binds the signed-in user's database for the request and makes its writes durable."""

import logging
from contextlib import ExitStack

from reeleditor.jsonapi import error_response

from . import leases, retry, sync
from .binding import bound_to_user
from .tracking import track_writes

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class SyncMiddleware:
    """For each signed-in request:

    * a write request (unsafe method) takes the user's lease first, so it is the only
      writer of that user anywhere;
    * the working copy is brought up to the committed version (one registry query; a
      pull only when behind);
    * the view runs with the user's database bound and its writes tracked;
    * every user database it wrote to is pushed and committed *before* the response
      leaves, and ``X-Sync-Status`` says honestly whether that worked.

    A read whose pull fails is served from the local copy (consistent, if behind) and
    says ``failed``; a write never runs on a copy it could not bring up to date.

    A sync middleware on purpose: Django runs it, the view and the ORM calls in the
    same per-request thread, so the connection closed at the end is the view's.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        retry.ensure_running()  # the periodic retry of this process's dirty copies
        return self._call(request)

    def _call(self, request):
        if not request.user.is_authenticated:
            return self.get_response(request)
        user_id = request.user.pk
        writes = request.method not in SAFE_METHODS
        stale = False
        try:
            with ExitStack() as stack:
                if writes:
                    stack.enter_context(leases.lease(user_id))
                stack.enter_context(bound_to_user(user_id))
                try:
                    row = sync.ensure_fresh(user_id)
                except sync.SyncUnavailable as exc:
                    if writes:
                        raise
                    # Served from the local copy and said in the header, but not recorded
                    # in the shared registry: it is this machine's trouble, and the next
                    # read that pulls fine must not go on reporting it.
                    logger.warning("user %s read a stale copy: %s", user_id, exc)
                    row, stale = None, True
                    request.sync_problem = f"Could not load your latest data: {exc}"
                with track_writes() as tracker:
                    response = self.get_response(request)
                results = sync.push_written(tracker)
        except leases.LeaseTimeout:
            return error_response(
                "Another change to your data is still being saved; try again.", "busy", 503
            )
        except (leases.LeaseUnavailable, sync.SyncUnavailable) as exc:
            logger.warning("request by user %s refused: %s", user_id, exc)
            return error_response(
                f"Your data cannot be loaded right now: {exc}", "sync_unavailable", 503
            )
        if "X-Sync-Status" not in response:  # the sync views set their own
            own = results.get(user_id)
            if own is not None:
                response["X-Sync-Status"] = own.status
            elif stale:
                response["X-Sync-Status"] = sync.Status.FAILED
            else:
                response["X-Sync-Status"] = sync.status_of(user_id, row)["status"]
        return response
