"""S3 media storage whose browser links can name another endpoint than the app uses.

Inside a private network the app may reach the object store by an internal name (in
compose.yaml, ``http://minio:9000``) that browsers cannot resolve. A presigned URL's
signature covers the host, so links for browsers are signed for the public endpoint
(``S3_PUBLIC_ENDPOINT_URL``, e.g. ``http://localhost:9000``); every request the app
makes itself still goes to ``S3_ENDPOINT_URL``. Signing needs no network access.
"""

import threading

from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class MediaStorage(S3Storage):
    def __init__(self, **settings):
        super().__init__(**settings)
        self._public_clients = threading.local()

    def __getstate__(self):  # S3Storage drops its thread-local clients when pickled
        state = super().__getstate__()
        state.pop("_public_clients", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._public_clients = threading.local()

    def get_default_settings(self):
        return {**super().get_default_settings(), "public_endpoint_url": None}

    def url(self, name, parameters=None, expire=None, http_method=None):
        if not self.public_endpoint_url:
            return super().url(name, parameters, expire, http_method)
        params = {
            **(parameters or {}),
            "Bucket": self.bucket_name,
            "Key": self._normalize_name(clean_name(name)),
        }
        return self._public_client().generate_presigned_url(
            "get_object",
            Params=params,
            ExpiresIn=self.querystring_expire if expire is None else expire,
            HttpMethod=http_method,
        )

    def _public_client(self):
        # boto3 clients are not shared between threads (daphne runs views in several).
        client = getattr(self._public_clients, "client", None)
        if client is None:
            client = self._create_session().client(
                "s3",
                region_name=self.region_name,
                use_ssl=self.use_ssl,
                endpoint_url=self.public_endpoint_url,
                config=self.client_config,
                verify=self.verify,
            )
            self._public_clients.client = client
        return client
