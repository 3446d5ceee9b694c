"""Helpers shared by the syncstore management commands (``resync``, ``syncstatus``)."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from syncstore import operations


def users_from_options(values, everyone: bool) -> list[int]:
    """The user ids named by ``--user`` values (ids or usernames), or every known user.

    A name that matches nobody is an error rather than a silent skip: an operator who
    mistypes a username must not read "0 failed" as "their data is safe".
    """
    if everyone:
        return operations.known_user_ids()
    model = get_user_model()
    users = model.objects
    known = set(operations.known_user_ids())
    ids: list[int] = []
    for value in values or []:
        value = str(value).strip()
        user_id = None
        # An id first; a user deleted from auth can still have a working copy or a
        # registry row worth syncing.
        if value.isdigit() and (users.filter(pk=int(value)).exists() or int(value) in known):
            user_id = int(value)
        if user_id is None:
            by_name = users.filter(**{model.USERNAME_FIELD: value})
            user_id = by_name.values_list("pk", flat=True).first()
        if user_id is None:
            raise CommandError(f"No such user: {value!r} (give a user id or a username).")
        if user_id not in ids:
            ids.append(user_id)
    return ids


def usernames(user_ids) -> dict[int, str]:
    """``{user id: username}`` in one query; users deleted from auth are left out."""
    model = get_user_model()
    return dict(model.objects.filter(pk__in=list(user_ids)).values_list("pk", model.USERNAME_FIELD))


class BarStream:
    """Hands tqdm's carriage-return updates to the command's stderr as they are.

    Django's ``OutputWrapper`` would end every update with a newline (one line per
    refresh) and colour it as an error on a terminal.
    """

    def __init__(self, wrapper):
        self._wrapper = wrapper

    def write(self, text):
        self._wrapper.write(text, style_func=str, ending="")

    def flush(self):
        self._wrapper.flush()
