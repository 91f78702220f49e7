"""The S3 side of an export: the zip's multipart upload, the step checkpoints, and reading the
avatars' files in chunks. Keys (all under `exports/`, whose lifecycle rule in infra/ removes
anything left past the retention and aborts unfinished uploads):

    exports/{uid}/{xid}.zip           the archive (a multipart upload until it completes)
    exports/{uid}/{xid}.step-{n}      the writer's state after step n-1: the zip's central directory so
                                      far, the manifest's entries, and the bytes not yet sent as a part
"""
from __future__ import annotations

import json
import struct
from typing import Any, Iterator

PREFIX = "exports/"
CHUNK_BYTES = 1024 * 1024


def zip_key(user_id: str, export_id: str) -> str:
    return f"{PREFIX}{user_id}/{export_id}.zip"


def checkpoint_key(user_id: str, export_id: str, step: int) -> str:
    return f"{PREFIX}{user_id}/{export_id}.step-{step}"


def _missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
        "404", "NoSuchKey", "NotFound", "NoSuchUpload")


class ExportFiles:
    """Handed the S3 client (a callable, built on first use) and the bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3_client = s3
        self.bucket = bucket

    @classmethod
    def of(cls, storage: Any) -> "ExportFiles":
        """On the app's Storage adapter (chalicelib.aws.storage): its client and bucket."""
        return cls(lambda: storage.client, storage.bucket)

    @property
    def _s3(self) -> Any:
        return self._s3_client()

    # ---- the zip -----------------------------------------------------------------------------
    def start_upload(self, key: str) -> str:
        return self._s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType="application/zip",
                                                CacheControl="private, no-store")["UploadId"]

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        return self._s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                    Body=data)["ETag"]

    def complete(self, key: str, upload_id: str, parts: list[dict]) -> None:
        self._s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={
            "Parts": [{"PartNumber": int(p["n"]), "ETag": p["etag"]} for p in parts]})

    def abort(self, key: str | None, upload_id: str | None) -> None:
        if not key or not upload_id:
            return
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # noqa: BLE001 — gone already; anything else is left to the lifecycle rule
            if not _missing(exc):
                raise

    def size(self, key: str) -> int | None:
        try:
            return int(self._s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except Exception as exc:  # noqa: BLE001
            if _missing(exc):
                return None
            raise

    def delete(self, keys: list[str | None]) -> None:
        present = [k for k in keys if k]
        if present:
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in present],
                                                                 "Quiet": True})

    # ---- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self, key: str, state: dict, tail: bytes) -> None:
        head = json.dumps(state, separators=(",", ":")).encode()
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=struct.pack(">Q", len(head)) + head + tail,
                            ContentType="application/octet-stream")

    def load_checkpoint(self, key: str) -> tuple[dict, bytes]:
        data = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        (length,) = struct.unpack(">Q", data[:8])
        return json.loads(data[8:8 + length]), data[8 + length:]

    # ---- sources -----------------------------------------------------------------------------
    def open(self, key: str) -> tuple[int, Iterator[bytes]] | None:
        """(size, chunks) of an avatar's file, or None when it is not there."""
        try:
            obj = self._s3.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            if _missing(exc):
                return None
            raise
        body = obj["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()

        return int(obj["ContentLength"]), chunks()
