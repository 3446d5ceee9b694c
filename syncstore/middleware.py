"""Binds the signed-in user's database for the request and makes its writes durable."""

import logging
from contextlib import ExitStack
from functools import partial

from django.conf import settings
from django.http import JsonResponse
from django.urls import Resolver404, resolve

from reeleditor.jsonapi import ApiError, error_response

from . import leases, retention, retry, sync
from .binding import bound_to_user
from .tracking import track_writes

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
BUSY_MESSAGE = "Another change to your data is still being saved; try again."
UNAVAILABLE_MESSAGE = "Your data cannot be loaded right now:"


def stores_files_first(view):
    """Mark a view that stores large files before it writes rows (an upload).

    Its lease is not taken before the view runs: the view stores the file with no lease
    held (a 2 GB upload to S3 must not block the user's autosaves), then calls
    ``take_write_lease(request)`` before it writes.
    """
    view.stores_files_first = True
    return view


class _DeferredLease:
    """The lease of a ``stores_files_first`` view, taken by the view when it is ready.

    Under ASGI the view may run in another context than this middleware, so the lease
    is held as an object here (not through ``leases.lease()``'s ContextVar) and adopted
    by the middleware for the push that follows the view.
    """

    def __init__(self, user_id: int):
        self.user_id = user_id
        self.lease: leases.Lease | None = None

    def take(self) -> None:
        if self.lease is not None:
            return
        self.lease = leases.Lease.acquire(
            self.user_id, wait=settings.LEASE_WAIT_SECONDS, ttl=settings.LEASE_TTL_SECONDS
        )
        try:
            # The copy must be at the committed version before anything is written on
            # it; raises SyncUnavailable (503) rather than write on a stale copy.
            sync.ensure_fresh(self.user_id)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        held, self.lease = self.lease, None
        if held is not None:
            held.release()


def take_write_lease(request) -> None:
    """Take the signed-in user's write lease now (views marked ``stores_files_first``).

    Raises ``ApiError`` 503 (busy, or the data cannot be loaded), the answers the
    middleware gives when it takes the lease itself.
    """
    try:
        request.sync_deferred_lease.take()
    except (leases.LeaseTimeout, sync.CopyBusy) as exc:
        raise ApiError(BUSY_MESSAGE, "busy", 503) from exc
    except (leases.LeaseUnavailable, sync.SyncUnavailable) as exc:
        raise ApiError(f"{UNAVAILABLE_MESSAGE} {exc}", "sync_unavailable", 503) from exc


def _stores_files_first(request) -> bool:
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return getattr(match.func, "stores_files_first", False)


class SyncMiddleware:
    """For each signed-in request:

    * a write request (unsafe method) takes the user's lease before its view runs (or,
      for an upload, once the file is stored: ``stores_files_first``), so it is the
      only writer of that user anywhere, and brings the copy up to the committed
      version under it;
    * a read brings the copy up to date without a lease (one registry query; a pull
      only when behind), and is served from the local copy if that fails;
    * the view runs with the user's database bound and its writes tracked;
    * every user database it wrote to is pushed and committed *before* the response
      leaves, and the answer says what happened to *this request's* writes:
      ``X-Sync-Status: ok`` (committed), ``failed`` (kept here, retried later), or 409
      ``{"code": "conflict"}`` when another commit won and the writes were refused.

    A sync middleware on purpose: Django runs it, the view and the ORM calls in the
    same per-request thread, so the connection closed at the end is the view's.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        retry.ensure_running()  # the periodic retry of this process's dirty copies
        if not request.user.is_authenticated:
            return self.get_response(request)
        try:
            return self._call(request, request.user.pk)
        except (leases.LeaseTimeout, sync.CopyBusy):
            return error_response(BUSY_MESSAGE, "busy", 503)
        except (leases.LeaseUnavailable, sync.SyncUnavailable) as exc:
            logger.warning("request by user %s refused: %s", request.user.pk, exc)
            return error_response(f"{UNAVAILABLE_MESSAGE} {exc}", "sync_unavailable", 503)

    def _call(self, request, user_id):
        stale = False
        also = []
        with ExitStack() as stack:
            if request.method in SAFE_METHODS:
                stack.enter_context(bound_to_user(user_id))
                stale = self._freshen_for_read(request, user_id)
            elif _stores_files_first(request):
                deferred = request.sync_deferred_lease = _DeferredLease(user_id)
                stack.callback(deferred.release)
                stack.enter_context(bound_to_user(user_id))
            else:
                stack.enter_context(leases.lease(user_id))
                stack.enter_context(bound_to_user(user_id))
                sync.ensure_fresh(user_id)
                also = [user_id]  # the next write also pushes earlier unpushed ones
            with track_writes() as tracker:
                response = self.get_response(request)
            deferred = getattr(request, "sync_deferred_lease", None)
            if deferred is not None and deferred.lease is not None:
                stack.enter_context(leases.adopted(deferred.lease))
                also = [user_id]
            with sync.cleanup_later() as cleanup:
                results = sync.push_written(tracker, also=also)
            # Only what this request wrote decides its answer: earlier unpushed writes
            # pushed along (and perhaps refused) are the account's story, not this one's.
            own = {uid: result for uid, result in results.items() if uid in tracker.user_ids}
            # Still bound: a read's status is read through its own connection.
            response = self._answer(response, user_id, own, stale)
        if cleanup:
            # Retention cleanup is no part of the answer: it runs once the response has
            # been sent (Django closes it then), off the write's path.
            response._resource_closers.append(partial(retention.after_commits, cleanup))
        return response

    def _freshen_for_read(self, request, user_id) -> bool:
        try:
            sync.ensure_fresh(user_id)
        except sync.CopyBusy:
            raise
        except sync.SyncUnavailable as exc:
            # Served from the local copy and said in the header, but not recorded in
            # the shared registry: it is this machine's trouble.
            logger.warning("user %s read a stale copy: %s", user_id, exc)
            request.sync_problem = f"Could not load your latest data: {exc}"
            return True
        return False

    def _answer(self, response, user_id, results, stale):
        refused = [r for r in results.values() if r.status == sync.Status.CONFLICT]
        if refused:
            response = JsonResponse(
                {
                    "error": refused[0].error
                    or "Your change was not saved: another change was saved first.",
                    "code": "conflict",
                },
                status=409,
            )
            response["X-Sync-Status"] = sync.Status.CONFLICT
            return response
        if "X-Sync-Status" in response:  # the sync views say the account's state
            return response
        if results:
            failed = any(not r.ok for r in results.values())
            response["X-Sync-Status"] = sync.Status.FAILED if failed else sync.Status.OK
        else:
            response["X-Sync-Status"] = sync.request_status(user_id, stale=stale)
        return response
