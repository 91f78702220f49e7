"""SigV4 query presigning of S3 GET URLs without botocore's request pipeline.

A list page answers ~40 presigned image URLs. botocore's `generate_presigned_url` builds, routes and
signs a full request for each (~0.5 ms apiece: a page's 40 took longer than its DynamoDB round
trips); the signature itself is two SHA-256s and one HMAC once the day's signing key is cached. The URL's scheme, host and
path prefix come from one botocore presign per container (so endpoint resolution — virtual-hosted or
path style, custom endpoint, region quirks — stays botocore's), and the output is byte-identical to
botocore's for the same time and credentials (tests/unit/test_presign.py compares them).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Callable, NamedTuple
from urllib.parse import quote, urlsplit

_PROBE = "__presign_probe__"
_UNRESERVED = "-_.~"


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


class UrlBase(NamedTuple):
    origin: str  # scheme://host[:port]
    host: str  # the Host header botocore signs
    path_prefix: str  # path before the key, e.g. "/bucket/" (path style) or "/" (virtual-hosted)


def url_base(probe_url: str) -> UrlBase:
    """Where keys go in a URL, read from a URL botocore presigned for the key `_PROBE`."""
    parts = urlsplit(probe_url)
    if not parts.path.endswith(_PROBE):
        raise ValueError(f"unexpected presigned URL shape: {parts.path!r}")
    return UrlBase(f"{parts.scheme}://{parts.netloc}", parts.netloc, parts.path[: -len(_PROBE)])


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _enc(value: str) -> str:
    return quote(value, safe=_UNRESERVED)


class S3Presigner:
    """Presigns GET object URLs for one bucket; safe to share across threads (the cache is a dict
    replaced whole)."""

    def __init__(self, base: UrlBase, region: str, credentials: Callable[[], Credentials],
                 clock: Callable[[], float] = time.time) -> None:
        self._base = base
        self._region = region
        self._credentials = credentials
        self._clock = clock
        self._keys: dict[tuple[str, str], bytes] = {}
        self._prefixes: dict[tuple, tuple[str, str, str]] = {}
        self._dates: dict[int, str] = {}

    def _signing_key(self, secret: str, date: str) -> bytes:
        cached = self._keys.get((secret, date))
        if cached is None:
            k = _hmac(("AWS4" + secret).encode("utf-8"), date)
            k = _hmac(k, self._region)
            k = _hmac(k, "s3")
            cached = _hmac(k, "aws4_request")
            # One entry: the key changes only with the day or the credentials.
            self._keys = {(secret, date): cached}
        return cached

    def _prefix(self, creds: Credentials, amz_date: str, expires: int) -> tuple[str, str, str]:
        """(query, canonical query, scope) — the same for every key signed in one second."""
        cache_key = (creds, amz_date, expires)
        cached = self._prefixes.get(cache_key)
        if cached is None:
            scope = f"{amz_date[:8]}/{self._region}/s3/aws4_request"
            # botocore's order; the canonical query is the same pairs sorted by name.
            params = [
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                ("X-Amz-Credential", f"{creds.access_key}/{scope}"),
                ("X-Amz-Date", amz_date),
                ("X-Amz-Expires", str(int(expires))),
                ("X-Amz-SignedHeaders", "host"),
            ]
            if creds.token is not None:
                params.append(("X-Amz-Security-Token", creds.token))
            encoded = [(name, _enc(value)) for name, value in params]
            cached = ("&".join(f"{n}={v}" for n, v in encoded),
                      "&".join(f"{n}={v}" for n, v in sorted(encoded)), scope)
            self._prefixes = {cache_key: cached}  # one entry: a list page signs within a second or two
        return cached

    def presign_get(self, key: str, expires: int) -> str:
        creds = self._credentials()
        now = int(self._clock())
        amz_date = self._dates.get(now)
        if amz_date is None:
            amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
            self._dates = {now: amz_date}
        query, canonical_query, scope = self._prefix(creds, amz_date, expires)
        path = self._base.path_prefix + quote(key, safe="/~")
        canonical_request = f"GET\n{path}\n{canonical_query}\nhost:{self._base.host}\n\nhost\nUNSIGNED-PAYLOAD"
        string_to_sign = (f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
                          + hashlib.sha256(canonical_request.encode("utf-8")).hexdigest())
        signature = hmac.new(self._signing_key(creds.secret_key, amz_date[:8]), string_to_sign.encode("utf-8"),
                             hashlib.sha256).hexdigest()
        return f"{self._base.origin}{path}?{query}&X-Amz-Signature={signature}"


def for_client(s3: Any, bucket: str, credentials: Callable[[], Credentials]) -> S3Presigner:
    """A presigner whose URLs match what `s3.generate_presigned_url('get_object', ...)` answers."""
    probe = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": _PROBE}, ExpiresIn=60)
    return S3Presigner(url_base(probe), s3.meta.region_name, credentials)


def frozen(botocore_credentials: Any) -> Callable[[], Credentials]:
    """Adapts botocore credentials (refreshed by botocore when they are temporary) to `Credentials`."""
    def current() -> Credentials:
        c = botocore_credentials.get_frozen_credentials()
        return Credentials(c.access_key, c.secret_key, c.token)
    return current
