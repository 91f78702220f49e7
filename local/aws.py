"""boto3 clients for the embedded stack (ministack) — or for whatever the environment points at
(moto's `mock_aws()` in functional tests) when no endpoint is given."""
from __future__ import annotations

import threading
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
# ministack verifies presigned SigV4 URLs against these keys: every local client must use them.
ACCESS_KEY_ID = "test"
SECRET_ACCESS_KEY = "test"


def client(service: str, endpoint_url: str | None, region: str = REGION, *, max_pool: int = 50) -> Any:
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3},
                               "max_pool_connections": max_pool}
    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs.update(endpoint_url=endpoint_url, aws_access_key_id=ACCESS_KEY_ID,
                      aws_secret_access_key=SECRET_ACCESS_KEY)
        if service == "s3":
            options.update(signature_version="s3v4", s3={"addressing_style": "path"})
    with _lock:
        global _session
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, config=Config(**options), **kwargs)


# One boto3 session per process: a new session parses botocore's service models again (~60 ms a
# client, 4 clients each time the functional tests provision moto); a further client on a warm session
# costs a few ms. Sessions are not thread-safe, so clients are made under a lock (clients themselves are).
_lock = threading.Lock()
_session: Any = None
