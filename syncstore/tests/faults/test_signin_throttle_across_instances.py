"""Sign-in throttling holds across machines: failed attempts on one instance count on
every other, because django-axes keeps them in the central database they share.

Two real app processes (their own data folders) on SQLite and on PostgreSQL; a guesser
alternates between them as a load balancer would send it.
"""

import pytest

from .conftest import CENTRAL_DATABASES
from .instances import ApiClient

PASSWORD = "pw-coach-throttle-1"
LIMIT = 5  # the default AXES_FAILURE_LIMIT


def attempt(instance, password) -> int:
    """One sign-in of "coach" on ``instance`` from a new browser: the status code."""
    try:
        ApiClient(instance).login("coach", password)
        return 302
    except RuntimeError as refused:  # the login form again (200) or the lockout (429)
        return int(str(refused).split(" failed: ")[1].split()[0])


@pytest.mark.parametrize("central_database", CENTRAL_DATABASES, indirect=True)
def test_wrong_passwords_on_one_instance_lock_the_account_on_the_other(
    app_instances, central_database
):
    a, b = app_instances.many("a", "b", users=[("coach", PASSWORD)])

    answers = [attempt((a, b)[n % 2], "guess") for n in range(LIMIT)]

    assert answers[:-1] == [200] * (LIMIT - 1), answers
    assert answers[-1] == 429, answers
    # The right password, on either instance, while the lock lasts: refused.
    assert attempt(a, PASSWORD) == 429
    assert attempt(b, PASSWORD) == 429
