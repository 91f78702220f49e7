"""A webhook receiver on 127.0.0.1 that checks every delivery with the `standardwebhooks` package
(an implementation that is not ours), plus helpers to read a table's stream like Lambda does."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """`with Receiver(secret=None) as r:` … `r.url`; `r.script` = statuses to answer in turn (then 200),
    `r.delay` seconds to wait before answering; `r.deliveries` = every request received, in order,
    each {"id", "timestamp", "signature", "event", "verified", "at"}."""

    def __init__(self, *, path: str = "/hook", delay: float = 0.0) -> None:
        self.path = path
        self.delay = delay
        self.script: list[int] = []
        self.secrets: list[str] = []
        self.deliveries: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                receiver._record(self.path, dict(self.headers.items()), raw)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def _record(self, path: str, headers: dict[str, str], raw: bytes) -> None:
        from standardwebhooks import Webhook

        lower = {k.lower(): v for k, v in headers.items()}
        verified = []
        for secret in list(self.secrets):
            try:
                Webhook(secret).verify(raw, lower)
                verified.append(secret)
            except Exception:  # noqa: BLE001 - WebhookVerificationError: recorded, asserted by the test
                pass
        with self._lock:
            self.deliveries.append({"path": path, "id": lower.get("webhook-id"),
                                    "timestamp": lower.get("webhook-timestamp"),
                                    "signature": lower.get("webhook-signature"), "event": json.loads(raw),
                                    "raw": raw, "verified": verified, "at": time.time()})

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.01)
        with self._lock:
            return list(self.deliveries)


def stream_records(table_name: str, *, region: str = "us-east-1", endpoint_url: str | None = None,
                   streams: Any = None) -> list[dict]:
    """Every record the table's stream holds now, in the Lambda event shape (TRIM_HORIZON)."""
    import boto3

    from local.streams import lambda_stream_record

    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs.update(endpoint_url=endpoint_url, aws_access_key_id="test", aws_secret_access_key="test")
    arn = boto3.client("dynamodb", **kwargs).describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    streams = streams or boto3.client("dynamodbstreams", **kwargs)
    out = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page.get("Records") or []
            out += [lambda_stream_record(r, arn, region) for r in records]
            if not records:
                break
            iterator = page.get("NextShardIterator")
    return out
