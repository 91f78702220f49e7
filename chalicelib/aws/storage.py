"""S3 layout and presigned URLs. The bucket is private; clients only ever get presigned URLs.

    uploads/{uid}/{aid}         original bytes from the browser (the only prefix that notifies the upload queue;
                                removed after processing, and by a lifecycle rule if abandoned)
    images/{uid}/{aid}[.{ver}].{ext}  cleaned full image (metadata stripped losslessly; re-encoded only to turn it upright)
    thumbs/{uid}/{aid}[.{ver}].jpg    300x300 thumbnail (centre crop); thumbs/{uid}/{aid}[.{ver}]-c{n}.jpg after the
                                n-th crop change, so a new thumbnail always has a new URL
    display/{uid}/{aid}[.{ver}].webp  display copy: upright, 1024 px on the long side, no metadata
                                (a generated avatar's files carry the token of the run that made them)
    presets/{preset}.{ext}      shared preset previews
"""
from __future__ import annotations

from typing import Any, Callable

UPLOAD_PREFIX = "uploads/"
_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def upload_key(user_id: str, avatar_id: str) -> str:
    return f"{UPLOAD_PREFIX}{user_id}/{avatar_id}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(user_id, avatar_id) for a key under uploads/, else None."""
    if not key.startswith(UPLOAD_PREFIX):
        return None
    parts = key[len(UPLOAD_PREFIX):].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def _versioned(avatar_id: str, version: str | None) -> str:
    return f"{avatar_id}.{version}" if version else avatar_id


def image_key(user_id: str, avatar_id: str, fmt: str, *, version: str | None = None) -> str:
    return f"images/{user_id}/{_versioned(avatar_id, version)}.{_EXT.get(fmt, 'bin')}"


def thumbnail_key(user_id: str, avatar_id: str, crop_version: int = 0, *, version: str | None = None) -> str:
    name = _versioned(avatar_id, version)
    return f"thumbs/{user_id}/{name}-c{crop_version}.jpg" if crop_version else f"thumbs/{user_id}/{name}.jpg"


DERIVED_PREFIXES = ("images/", "thumbs/", "display/")


def owner_of(key: str) -> tuple[str, str] | None:
    """(user_id, avatar_id) of a file under images/, thumbs/ or display/ (whatever its version, crop or
    extension: avatar ids hold neither "." nor "-")."""
    for prefix in DERIVED_PREFIXES:
        if key.startswith(prefix):
            parts = key[len(prefix):].split("/")
            if len(parts) == 2 and parts[0] and parts[1]:
                return parts[0], parts[1].split(".", 1)[0].split("-", 1)[0]
    return None


def display_key(user_id: str, avatar_id: str, *, version: str | None = None) -> str:
    return f"display/{user_id}/{_versioned(avatar_id, version)}.webp"


class Storage:
    def __init__(self, s3: Callable[[], Any], bucket: str, credentials: Callable[[], Any] | None = None) -> None:
        """`s3` answers the S3 client, called on each use so that it is built only when needed (its
        service model is the largest botocore parses). `credentials` (see chalicelib.aws.presign.frozen)
        turns on the fast GET presigner; without it botocore presigns every URL."""
        self._s3_client = s3
        self.bucket = bucket
        self._credentials = credentials
        self._presigner: Any = None

    @property
    def _s3(self) -> Any:
        return self._s3_client()

    @property
    def client(self) -> Any:
        """The S3 client (built on first use), for a feature's adapter that needs calls this class does
        not offer (chalicelib/exports/files.py: multipart uploads)."""
        return self._s3_client()

    def presigned_get(self, key: str | None, expires: int) -> str | None:
        if not key:
            return None
        if self._credentials is not None:
            if self._presigner is None:
                from chalicelib.aws.presign import for_client

                self._presigner = for_client(self._s3, self.bucket, self._credentials)
            return self._presigner.presign_get(key, expires)
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
        )

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires: int) -> dict:
        return self._s3.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"bucket": self.bucket},
                ["eq", "$key", key],
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=expires,
        )

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                            CacheControl="private, max-age=31536000, immutable")

    def get(self, key: str, max_bytes: int) -> bytes:
        """Read at most max_bytes + 1 bytes so an oversized object is detected without loading it whole."""
        obj = self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        return obj["Body"].read()

    def get_if_exists(self, key: str, max_bytes: int) -> bytes | None:
        """Like get(), but None when the object is not there (already processed by a duplicate)."""
        return _unless_missing(self.get, key, max_bytes)

    def head(self, key: str) -> dict | None:
        return _unless_missing(lambda: self._s3.head_object(Bucket=self.bucket, Key=key))

    def list_page(self, prefix: str, *, start_after: str | None = None, limit: int = 1000) -> list[dict]:
        """One ListObjectsV2 page: [{"Key", "LastModified", "Size"}] in key order after `start_after`."""
        params = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if start_after:
            params["StartAfter"] = start_after
        return self._s3.list_objects_v2(**params).get("Contents", [])

    def delete(self, keys: list[str | None]) -> None:
        present = [k for k in keys if k]
        for start in range(0, len(present), 1000):
            chunk = present[start:start + 1000]
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})


def _unless_missing(call: Any, *args: Any) -> Any:
    """`call(*args)`, or None when S3 answers that the object is not there: the one place that knows
    S3's ways of saying so (NoSuchKey from GET, a bare 404 from HEAD, NotFound from some emulators)."""
    from botocore.exceptions import ClientError

    try:
        return call(*args)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
