"""Fixtures of the syncstore tests (plain helpers are in ``helpers.py``).

The object-store fixtures (``s3_store``, ``local_store``, ``store``, ``s3_outage``...)
serve every app and live in the ``fixtures.py`` plugin; users and clients are in the
root ``conftest.py``.
"""

from pathlib import Path

import pytest
from django.db import connection


@pytest.fixture
def central_database_url() -> str:
    """A ``DATABASE_URL`` for this test's central database (SQLite file or PostgreSQL).

    For tests that start other processes on the same central database as this one.
    """
    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        path = Path(cfg["NAME"])
        assert path.is_file(), f"the central test database is not a file: {path}"
        return f"sqlite:///{path}"
    assert connection.vendor == "postgresql", connection.vendor
    user = cfg["USER"] + (f":{cfg['PASSWORD']}" if cfg["PASSWORD"] else "")
    return f"postgres://{user}@{cfg['HOST'] or '127.0.0.1'}:{cfg['PORT'] or 5432}/{cfg['NAME']}"
