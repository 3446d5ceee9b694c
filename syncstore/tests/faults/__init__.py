"""Fault-injection test infrastructure: real app processes, a shared central database,
and an S3 proxy that can cut requests by key prefix (see ``conftest.py``)."""
