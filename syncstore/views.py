"""The sync API: the state of the signed-in user's data, and a retry button."""

from django.http import JsonResponse

from reeleditor.jsonapi import api_view
from syncstore.binding import current_user_id

from . import sync


@api_view("GET")
def status(request):
    """The account as a whole: a conflict copy waiting to be seen is reported here."""
    data = sync.status_of(current_user_id())
    problem = getattr(request, "sync_problem", None)  # this request read a stale copy
    if problem:
        data = {**data, "status": sync.Status.FAILED, "last_error": problem}
    response = JsonResponse(data)
    response["X-Sync-Status"] = data["status"]
    return response


@api_view("POST")
def retry(request):
    """Push now (the middleware holds the user's lease), and acknowledge a conflict."""
    user_id = current_user_id()
    sync.acknowledge(user_id)
    result = sync.push(user_id)
    data = sync.status_of(user_id)
    response = JsonResponse(data, status=503 if result.status == sync.Status.FAILED else 200)
    # What this retry did: a refused copy is kept as a conflict copy and the data follows
    # the saved version, which is the answer the user asked for.
    response["X-Sync-Status"] = sync.Status.OK if result.ok else result.status
    return response
