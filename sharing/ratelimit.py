"""A per-address limit on the public share routes (anyone can reach them).

A fixed one-minute window counted in Django's cache: shared by every process when the
cache is (Redis), per process otherwise, so in the embedded default the allowance is
per process. It is a brake on scraping and hammering, not an access control: the
token is that. The entry point can add its own (nginx ``limit_req``).
"""

import time

from django.conf import settings
from django.core.cache import cache

from accounts.signin import client_ip

WINDOW_SECONDS = 60


def allow(request) -> bool:
    """Count this request against its address; False once the window's allowance is used."""
    limit = settings.SHARE_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return True
    window = int(time.time() // WINDOW_SECONDS)
    key = f"share-rate:{client_ip(request)}:{window}"
    if cache.add(key, 1, timeout=WINDOW_SECONDS * 2):
        return True
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=WINDOW_SECONDS * 2)
        return True
    return count <= limit
