"""Fixtures of the syncstore tests (plain helpers are in ``helpers.py``).

The object-store fixtures (``s3_store``, ``local_store``, ``store``, ``s3_outage``...)
serve every app and live in the ``fixtures.py`` plugin; users and clients are in the
root ``conftest.py``.
"""

from pathlib import Path

import pytest
from django.db import connection


@pytest.fixture
def central_database_file() -> Path:
    """The path of this test's central database file (the root conftest makes it a file).

    For tests that start other processes on the same central database as this one.
    """
    assert connection.vendor == "sqlite", "these tests share a SQLite central database file"
    path = Path(connection.settings_dict["NAME"])
    assert path.is_file(), f"the central test database is not a file: {path}"
    return path
