"""Feeds each `@app.on_sqs_message` handler from its queue, the way Lambda's SQS event source mapping
does: long polling, `batch_size` records per invocation, `maximum_concurrency` pollers, the Lambda
SQS event shape and a Lambda-like context; on return every record is deleted except those listed
in `batchItemFailures`; on an exception none is deleted, so the records come back after the
visibility timeout and `maxReceiveCount` moves poison messages to the DLQ.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from local import aws

log = logging.getLogger("local.feeder")


class LambdaContext:
    """What Lambda passes as `context` (Powertools' Logger.inject_lambda_context reads it)."""

    def __init__(self, function_name: str, *, region: str = aws.REGION, account_id: str = aws.ACCOUNT_ID,
                 memory_limit_in_mb: int = 128, timeout_seconds: float = 60.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = int(memory_limit_in_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS API shape (StringValue, BinaryValue bytes…) → Lambda event shape (lowercase, base64)."""
    def b64(data: Any) -> str:
        return base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode()

    out: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [b64(v) for v in value.get("BinaryListValues") or []],
        "dataType": value.get("DataType"),
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = b64(value["BinaryValue"])
    return out


def lambda_sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    body = message["Body"]
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {k: _message_attribute(v) for k, v in (message.get("MessageAttributes") or {}).items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_ids(result: Any, batch_ids: set[str]) -> set[str] | None:
    """Message ids to keep from a handler's return value; None means "the whole batch failed"
    (Lambda treats a malformed partial batch response as a complete failure)."""
    if not isinstance(result, dict) or "batchItemFailures" not in result:
        return set()
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for item in failures:
        item_id = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not item_id or item_id not in batch_ids:
            return None
        ids.add(item_id)
    return ids


@dataclass
class Source:
    name: str                      # the handler's name in app.handler_map (the Lambda function)
    handler: Callable[[dict, Any], Any]
    queue_name: str
    queue_url: str
    queue_arn: str
    batch_size: int
    concurrency: int
    function_name: str
    timeout_seconds: float
    memory_mb: int


class Feeder:
    """`Feeder(app, endpoint_url=...).start()` … `.stop()`.

    `concurrency` overrides the number of pollers per handler (keyed by handler or queue name).
    Handlers run on several threads at once when concurrency > 1 (as Lambda runs several
    instances): they must be thread-safe.
    """

    def __init__(self, app: Any, endpoint_url: str | None, region: str = aws.REGION, *,
                 concurrency: Mapping[str, int] | None = None, wait_seconds: int = 1,
                 stage: str = "local", chalice_stage: str = "dev", client: Any = None) -> None:
        self.app = app
        self.endpoint_url = endpoint_url
        self.region = region
        self.concurrency = dict(concurrency or {})
        self.wait_seconds = wait_seconds
        self.stage = stage
        self.chalice_stage = chalice_stage
        self._client = client
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.sources: list[Source] = []
        self.invocations = 0
        self.errors = 0
        self._count_lock = threading.Lock()

    # ---- discovery -------------------------------------------------------------------------
    def discover(self) -> list[Source]:
        from chalice.app import SQSEventConfig

        from local.server import chalice_config

        sqs = self.sqs
        sources = []
        for config in getattr(self.app, "event_sources", []):
            if not isinstance(config, SQSEventConfig):
                continue
            queue_name = config.queue or (config.queue_arn or "").rsplit(":", 1)[-1]
            try:
                url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            except Exception as exc:
                raise RuntimeError(f"handler {config.name}: queue {queue_name!r} does not exist "
                                   f"(is it in infra/resources.json?): {exc}") from exc
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            handler = self.app.handler_map[config.name]
            _prime(handler)
            n = self.concurrency.get(config.name) or self.concurrency.get(queue_name) \
                or config.maximum_concurrency or 1
            cfg = chalice_config(config.name, self.chalice_stage)
            sources.append(Source(
                name=config.name, handler=handler, queue_name=queue_name, queue_url=url, queue_arn=arn,
                batch_size=max(1, min(int(config.batch_size or 1), 10)), concurrency=max(1, int(n)),
                function_name=f"{getattr(self.app, 'app_name', 'app')}-{self.stage}-{config.name}",
                timeout_seconds=float(cfg.lambda_timeout or 60), memory_mb=int(cfg.lambda_memory_size or 128)))
        return sources

    @property
    def sqs(self) -> Any:
        if self._client is None:
            self._client = aws.client("sqs", self.endpoint_url, self.region)
        return self._client

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> "Feeder":
        self.sources = self.discover()
        for source in self.sources:
            for i in range(source.concurrency):
                t = threading.Thread(target=self._poll, args=(source,), name=f"feeder-{source.name}-{i}",
                                     daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; batches in flight finish (and are deleted) first."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("feeder: still busy after %.0fs: %s", timeout, ", ".join(alive))
        self._threads = []

    def describe(self) -> list[str]:
        return [f"{s.name} ← {s.queue_name} (batch {s.batch_size}, {s.concurrency} poller"
                f"{'s' if s.concurrency > 1 else ''})" for s in self.sources]

    # ---- polling ---------------------------------------------------------------------------
    def _poll(self, source: Source) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=source.queue_url, MaxNumberOfMessages=source.batch_size,
                    WaitTimeSeconds=self.wait_seconds, AttributeNames=["All"],
                    MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
                ).get("Messages", [])
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - the emulator restarting, a network blip…
                if self._stop.is_set():
                    return
                log.warning("feeder %s: receive failed: %s: %s", source.name, type(exc).__name__, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if messages:
                self.invoke(source, messages)

    def invoke(self, source: Source, messages: list[dict]) -> None:
        event = {"Records": [lambda_sqs_record(m, source.queue_arn, self.region) for m in messages]}
        context = LambdaContext(source.function_name, region=self.region, memory_limit_in_mb=source.memory_mb,
                                timeout_seconds=source.timeout_seconds)
        started = time.monotonic()
        by_id = {m["MessageId"]: m for m in messages}
        with self._count_lock:
            self.invocations += 1
        try:
            result = source.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - one bad batch never stops the poller
            with self._count_lock:
                self.errors += 1
            log.error("feeder %s: handler raised %s: %s (%d record(s) left for redelivery) [%s]",
                      source.name, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "",
                      len(messages), context.aws_request_id)
            return
        keep = failed_ids(result, set(by_id))
        if keep is None:
            log.error("feeder %s: invalid batchItemFailures %r: the whole batch is retried",
                      source.name, result.get("batchItemFailures") if isinstance(result, dict) else result)
            return
        done = [m for mid, m in by_id.items() if mid not in keep]
        self._delete(source, done)
        log.info("feeder %s: %d record(s), %d failed, %.0fms", source.name, len(messages), len(keep),
                 (time.monotonic() - started) * 1000)

    def _delete(self, source: Source, messages: list[dict]) -> None:
        if not messages:
            return
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        try:
            failed = self.sqs.delete_message_batch(QueueUrl=source.queue_url, Entries=entries).get("Failed", [])
        except Exception as exc:  # noqa: BLE001
            log.error("feeder %s: delete failed (%s): records will be redelivered", source.name, exc)
            return
        for f in failed:
            log.error("feeder %s: delete of record %s failed: %s", source.name, f.get("Id"), f.get("Message"))


def _prime(handler: Any) -> None:
    """Chalice's EventSourceHandler builds its middleware chain lazily from a one-shot generator:
    build it once here, before several poller threads could race on the first call."""
    if getattr(handler, "handler", "absent") is None and hasattr(handler, "_build_middleware_handlers"):
        handler.handler = handler._build_middleware_handlers(handler.middleware_handlers,
                                                             original_handler=handler.func)
