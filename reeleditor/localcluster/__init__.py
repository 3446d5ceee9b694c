"""A production-shaped cluster on one machine: PostgreSQL, Redis, S3 (moto), two web
instances behind nginx, one Celery worker. ``make cluster`` starts it (see
``__main__``); the load and fault suite (``reeleditor/tests/cluster``) starts its own.
"""
