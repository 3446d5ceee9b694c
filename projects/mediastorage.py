"""S3 media storage whose browser links can name another endpoint than the app uses.

Inside a private network the app may reach the object store by an internal name (in
compose.yaml, ``http://minio:9000``) that browsers cannot resolve. A presigned URL's
signature covers the host, so links for browsers are signed for the public endpoint
(``S3_PUBLIC_ENDPOINT_URL``, e.g. ``http://localhost:9000``); every request the app
makes itself still goes to ``S3_ENDPOINT_URL``. Signing needs no network access.
"""

from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class MediaStorage(S3Storage):
    _public = None  # the signing client, made on first use

    def __getstate__(self):  # as S3Storage drops its connections when pickled
        state = super().__getstate__()
        state.pop("_public", None)
        return state

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
        return self._public_client.generate_presigned_url(
            "get_object",
            Params=params,
            ExpiresIn=self.querystring_expire if expire is None else expire,
            HttpMethod=http_method,
        )

    @property
    def _public_client(self):
        # One client for every thread: boto3's low-level clients are thread-safe (its
        # resources, which S3Storage keeps per thread, are not). Two threads racing here
        # at first use make two equivalent clients; one is kept.
        if self._public is None:
            self._public = self._create_session().client(
                "s3",
                region_name=self.region_name,
                use_ssl=self.use_ssl,
                endpoint_url=self.public_endpoint_url,
                config=self.client_config,
                verify=self.verify,
            )
        return self._public
