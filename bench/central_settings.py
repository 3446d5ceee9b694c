"""Bench-only settings: the app with the projects models on the central database.

Used by ``bench/central_vs_peruser.py`` as the baseline ("central") of the per-user
design; never by the app. Everything is ``reeleditor.settings`` (same environment
variables, same middleware, same views and models) except:

* no database router: the ``projects`` models live in ``default`` (PostgreSQL), and
  ``migrate`` creates their tables there;
* ``SyncMiddleware`` (user database binding, lease, snapshot push) is replaced by
  ``bench.central_app.CentralBindingMiddleware``, which only gives the views the
  binding they read (the signed-in user's id, alias ``default``) and a no-op lease;
* ``bench.central_app`` adds the owner column and filter a central design needs for
  isolation (see that module).
"""

from reeleditor.settings import *  # noqa: F403
from reeleditor.settings import INSTALLED_APPS, MIDDLEWARE

DATABASE_ROUTERS = []
INSTALLED_APPS = [*INSTALLED_APPS, "bench.central_app.CentralConfig"]
MIDDLEWARE = [
    "bench.central_app.CentralBindingMiddleware"
    if name == "syncstore.middleware.SyncMiddleware"
    else name
    for name in MIDDLEWARE
]
