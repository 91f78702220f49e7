"""Feeds each `@app.on_dynamodb_record` handler from the table's DynamoDB stream, the way Lambda's
event source mapping does: records of each shard in order, up to `batch_size` per invocation, in
the Lambda event shape; on a partial batch response the mapping resumes at the first failed record
(records after it come again), on an exception the whole batch comes again, after a backoff; a
shard's position advances only past records a handler returned for.

The position (last sequence number per shard) is saved in a checkpoint file, so a restart of the
local stack resumes where it stopped. Without a checkpoint it starts at the handler's
`starting_position` (TRIM_HORIZON: everything the stream still holds).

ministack keeps stream records in memory only (its saved state has the tables, not their streams),
whereas AWS keeps them 24 h whatever happens to the consumer. So on stop, the records not yet handled
are saved (`stream-pending.json` beside the checkpoint) and handed to the handler first on the next
start: a write committed while the publisher was down is still published after a restart.

Bounded like the AWS mapping (the same properties, read from infra/resources.json: one definition):
MaximumRetryAttempts and MaximumRecordAgeInSeconds end the retries of a failing batch, which is then
skipped and described — shard and sequence numbers only, as Lambda does — in the on-failure
destination (`on_failure_queue_url`, the stack's StreamDlq); BisectBatchOnFunctionError halves a
batch whose invocation raised before it is retried. The stream handler itself parks a record it
gave up on (with the record) before these limits are reached (chalicelib/handlers/stream.py).

The decorator's stream ARN is a placeholder on AWS too (the package takes the table's StreamArn
from infra/resources.json); here the table's current stream is looked up by name.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from local import aws
from local.feeder import LambdaContext, _prime

log = logging.getLogger("local.streams")
# Lambda polls each shard of a DynamoDB stream four times a second when it is idle: so does this.
SHARD_LIST_SECONDS = 10.0


def lambda_stream_record(record: dict, stream_arn: str, region: str) -> dict:
    """A dynamodbstreams GetRecords record → the record Lambda passes (epoch-second creation time)."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {"eventID": record["eventID"], "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"), "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", region), "dynamodb": change, "eventSourceARN": stream_arn,
            **({"userIdentity": record["userIdentity"]} if record.get("userIdentity") else {})}


def mapping_properties(function_name: str) -> dict:
    """The event source properties infra/resources.json gives the function's DynamoDB mapping."""
    from local.provision import TEMPLATE_PATH

    logical = "".join(part.capitalize() for part in function_name.split("_"))
    resource = json.loads(TEMPLATE_PATH.read_text())["Resources"].get(logical) or {}
    source = ((resource.get("Properties") or {}).get("Events") or {}).get(f"{logical}DynamodbEventSource") or {}
    return dict(source.get("Properties") or {})


@dataclass
class StreamSource:
    name: str
    handler: Callable[[dict, Any], Any]
    batch_size: int
    starting_position: str
    function_name: str
    stream_arn: str = ""
    positions: dict[str, str] = field(default_factory=dict)  # shard id -> last sequence number handled
    max_retry_attempts: int = -1        # -1: until the record expires (AWS's default)
    max_record_age_seconds: int = -1
    bisect: bool = False
    failures: dict[str, int] = field(default_factory=dict)  # first sequence number of a failing batch -> retries
    limits: dict[str, int] = field(default_factory=dict)    # shard id -> batch size while bisecting


class StreamFeeder:
    def __init__(self, app: Any, endpoint_url: str | None, region: str = aws.REGION, *, table_name: str,
                 checkpoint_path: str | os.PathLike | None = None, poll_seconds: float = 0.25,
                 stage: str = "local", client: Any = None, ddb_client: Any = None,
                 on_failure_queue_url: str | None = None, sqs_client: Any = None) -> None:
        self.app = app
        self.endpoint_url = endpoint_url
        self.region = region
        self.table_name = table_name
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.poll_seconds = poll_seconds
        self.stage = stage
        self._streams = client
        self._ddb = ddb_client
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._save_lock = threading.Lock()
        self.sources: list[StreamSource] = []
        self.invocations = 0
        self.errors = 0
        self.on_failure_queue_url = on_failure_queue_url
        self._sqs = sqs_client
        self.discarded = 0  # batches given up on (sent to the on-failure destination)

    @property
    def streams(self) -> Any:
        if self._streams is None:
            self._streams = aws.client("dynamodbstreams", self.endpoint_url, self.region)
        return self._streams

    @property
    def ddb(self) -> Any:
        if self._ddb is None:
            self._ddb = aws.client("dynamodb", self.endpoint_url, self.region)
        return self._ddb

    # ---- discovery and checkpoints ----------------------------------------------------------
    def discover(self) -> list[StreamSource]:
        from chalice.app import DynamoDBEventConfig

        configs = [c for c in getattr(self.app, "event_sources", []) if isinstance(c, DynamoDBEventConfig)]
        if not configs:
            return []
        arn = self.ddb.describe_table(TableName=self.table_name)["Table"].get("LatestStreamArn")
        if not arn:
            raise RuntimeError(f"table {self.table_name} has no stream (StreamSpecification in infra/resources.json)")
        saved = self._load()
        sources = []
        for config in configs:
            handler = self.app.handler_map[config.name]
            _prime(handler)
            props = mapping_properties(config.name)
            sources.append(StreamSource(
                name=config.name, handler=handler, batch_size=max(1, min(int(config.batch_size or 100), 1000)),
                starting_position=config.starting_position or "LATEST",
                function_name=f"{getattr(self.app, 'app_name', 'app')}-{self.stage}-{config.name}",
                stream_arn=arn, positions=dict((saved.get(config.name) or {}).get(arn) or {}),
                max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                max_record_age_seconds=int(props.get("MaximumRecordAgeInSeconds", -1)),
                bisect=bool(props.get("BisectBatchOnFunctionError"))))
        return sources

    def _load(self) -> dict:
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return {}
        try:
            return json.loads(self.checkpoint_path.read_text())
        except ValueError:
            log.warning("streams: unreadable checkpoint %s, starting over", self.checkpoint_path)
            return {}

    def _save(self) -> None:
        if self.checkpoint_path is None:
            return
        with self._save_lock:
            data = {s.name: {s.stream_arn: dict(s.positions)} for s in self.sources}
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.checkpoint_path.parent, prefix=".streams.", suffix=".json")
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, self.checkpoint_path)

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> "StreamFeeder":
        if not self.sources:
            self.sources = self.discover()
        for source in self.sources:
            t = threading.Thread(target=self._run, args=(source,), name=f"streams-{source.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reading; then save what the stream holds that no handler has taken (see above)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        try:
            self.save_unread()
        except Exception as exc:  # noqa: BLE001 - the emulator already gone: nothing more to save
            log.warning("streams: could not save unread records: %s: %s", type(exc).__name__, exc)

    # ---- records across restarts (ministack does not keep them) -----------------------------
    @property
    def pending_path(self) -> Path | None:
        return self.checkpoint_path.with_name("stream-pending.json") if self.checkpoint_path else None

    def _load_pending(self) -> dict[str, list[dict]]:
        path = self.pending_path
        if path is None or not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except ValueError:
            log.warning("streams: unreadable %s, ignored", path)
            return {}

    def _write_pending(self, pending: dict[str, list[dict]]) -> None:
        path = self.pending_path
        if path is None:
            return
        if not any(pending.values()):
            path.unlink(missing_ok=True)
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pending.", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(pending, fh)
        os.replace(tmp, path)

    def save_unread(self) -> int:
        if self.pending_path is None or not self.sources:
            return 0
        pending = self._load_pending()
        saved = 0
        for source in self.sources:
            shards = self.streams.describe_stream(StreamArn=source.stream_arn)["StreamDescription"]["Shards"]
            for shard in shards:
                iterator = self._iterator(source, shard["ShardId"])
                while iterator:
                    page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                    records = page.get("Records") or []
                    if not records:
                        break
                    pending.setdefault(source.name, []).extend(
                        lambda_stream_record(r, source.stream_arn, self.region) for r in records)
                    source.positions[shard["ShardId"]] = records[-1]["dynamodb"]["SequenceNumber"]
                    saved += len(records)
                    iterator = page.get("NextShardIterator")
        self._write_pending(pending)
        self._save()
        if saved:
            log.info("streams: saved %d unread record(s) for the next start", saved)
        return saved

    def _replay_pending(self, source: StreamSource) -> None:
        """Records saved at the last stop go first, in order, retried until taken or stopped."""
        with self._save_lock:
            records = self._load_pending().pop(source.name, [])
        backoff = 0.5
        while records and not self._stop.is_set():
            batch = records[:source.batch_size]
            try:
                result = source.handler({"Records": batch}, LambdaContext(source.function_name, region=self.region))
                failures = (result or {}).get("batchItemFailures") if isinstance(result, dict) else None
                failed = {f.get("itemIdentifier") for f in failures or [] if isinstance(f, dict)}
            except Exception as exc:  # noqa: BLE001
                log.error("streams %s: replaying saved records raised %s: %s", source.name, type(exc).__name__, exc)
                failed = {batch[0]["dynamodb"]["SequenceNumber"]}
            sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
            first = min((sequence.index(f) for f in failed if f in sequence), default=None)
            records = records[len(batch) if first is None else first:]
            with self._save_lock:
                pending = self._load_pending()
                pending[source.name] = records
                self._write_pending(pending)
            if first is not None:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def describe(self) -> list[str]:
        return [f"{s.name} ← stream of {self.table_name} (batch {s.batch_size}, from "
                f"{'checkpoint' if s.positions else s.starting_position})" for s in self.sources]

    # ---- polling ----------------------------------------------------------------------------
    def _iterator(self, source: StreamSource, shard_id: str, at: str | None = None) -> str | None:
        kwargs: dict[str, Any] = {"StreamArn": source.stream_arn, "ShardId": shard_id}
        if at is not None:
            kwargs.update(ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=at)
        elif shard_id in source.positions:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=source.positions[shard_id])
        else:
            kwargs.update(ShardIteratorType=source.starting_position)
        try:
            return self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
        except Exception as exc:  # noqa: BLE001 - a checkpoint the emulator no longer knows
            if kwargs["ShardIteratorType"] in ("AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER"):
                log.warning("streams %s: cannot resume shard %s at %s (%s): reading it from the start",
                            source.name, shard_id, kwargs.get("SequenceNumber"), exc)
                return self.streams.get_shard_iterator(StreamArn=source.stream_arn, ShardId=shard_id,
                                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            raise

    def _run(self, source: StreamSource) -> None:
        self._replay_pending(source)
        iterators: dict[str, str | None] = {}
        backoff = 0.5
        shards: list[dict] = []
        listed = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - listed > SHARD_LIST_SECONDS:  # shards change rarely; records often
                    shards = self.streams.describe_stream(StreamArn=source.stream_arn)["StreamDescription"]["Shards"]
                    listed = time.monotonic()
                got = 0
                for shard in shards:
                    shard_id = shard["ShardId"]
                    if shard_id not in iterators:
                        iterators[shard_id] = self._iterator(source, shard_id)
                    iterator = iterators[shard_id]
                    if iterator is None:
                        continue  # a closed shard read to its end
                    page = self.streams.get_records(ShardIterator=iterator,
                                                    Limit=source.limits.get(shard_id, source.batch_size))
                    records = page.get("Records") or []
                    iterators[shard_id] = page.get("NextShardIterator")
                    if records:
                        got += len(records)
                        retry_at = self.invoke(source, shard_id, records)
                        if retry_at is not None:  # not handled: read again from there after a pause
                            iterators[shard_id] = self._iterator(source, shard_id, at=retry_at)
                            self._stop.wait(backoff)
                            backoff = min(backoff * 2, 5.0)
                            continue
                        backoff = 0.5
                if not got:
                    self._stop.wait(self.poll_seconds)
            except Exception as exc:  # noqa: BLE001 - the emulator restarting, an expired iterator…
                if self._stop.is_set():
                    return
                log.warning("streams %s: %s: %s", source.name, type(exc).__name__, exc)
                iterators.clear()
                listed = 0.0
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def drain(self, max_rounds: int = 100) -> int:
        """Feed what the stream holds now, once, from each shard's position (tests and benches).
        Stops at a batch that fails (its position stays before it); returns the records fed."""
        if not self.sources:
            self.sources = self.discover()
        fed = 0
        for source in self.sources:
            shards = self.streams.describe_stream(StreamArn=source.stream_arn)["StreamDescription"]["Shards"]
            for shard in shards:
                iterator = self._iterator(source, shard["ShardId"])
                for _ in range(max_rounds):
                    if not iterator:
                        break
                    page = self.streams.get_records(ShardIterator=iterator,
                                                    Limit=source.limits.get(shard["ShardId"], source.batch_size))
                    records = page.get("Records") or []
                    if not records:
                        break
                    fed += len(records)
                    if self.invoke(source, shard["ShardId"], records) is not None:
                        return fed
                    iterator = page.get("NextShardIterator")
        return fed

    def invoke(self, source: StreamSource, shard_id: str, records: list[dict]) -> str | None:
        """Run the handler on one batch; the sequence number to read again from, or None when done
        (handled, or given up on after the mapping's retry/age limits)."""
        event = {"Records": [lambda_stream_record(r, source.stream_arn, self.region) for r in records]}
        context = LambdaContext(source.function_name, region=self.region)
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        self.invocations += 1
        try:
            result = source.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - the whole batch comes again
            self.errors += 1
            log.error("streams %s: handler raised %s: %s (%d record(s) will be retried)", source.name,
                      type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", len(records))
            if source.bisect and len(records) > 1:  # BisectBatchOnFunctionError: retry half the batch
                source.limits[shard_id] = max(1, len(records) // 2)
            return self._failed(source, shard_id, records, 0)
        failures = (result or {}).get("batchItemFailures") if isinstance(result, dict) else None
        failed = [f.get("itemIdentifier") for f in failures or [] if isinstance(f, dict)]
        failed = [s for s in failed if s in sequence]
        if failed:
            first = min(failed, key=sequence.index)
            done = sequence[:sequence.index(first)]
            if done:
                source.positions[shard_id] = done[-1]
                self._save()
            log.warning("streams %s: %d record(s) failed: resuming at %s", source.name, len(failed), first)
            return self._failed(source, shard_id, records, sequence.index(first))
        source.limits.pop(shard_id, None)
        source.failures.clear()
        source.positions[shard_id] = sequence[-1]
        self._save()
        return None

    def _failed(self, source: StreamSource, shard_id: str, records: list[dict], index: int) -> str | None:
        """After a failed batch from records[index]: retry from there, or — past MaximumRetryAttempts or
        MaximumRecordAgeInSeconds — skip the failed records and describe them in the on-failure queue."""
        first = records[index]["dynamodb"]["SequenceNumber"]
        retries = source.failures.get(first, -1) + 1  # the first invocation is no retry
        source.failures = {first: retries}
        created = records[index]["dynamodb"].get("ApproximateCreationDateTime")
        created_epoch = created.timestamp() if isinstance(created, datetime) else float(created or time.time())
        too_old = 0 <= source.max_record_age_seconds < time.time() - created_epoch
        exhausted = 0 <= source.max_retry_attempts < retries + 1
        if not (too_old or exhausted):
            return first
        skipped = records[index:]
        self._on_failure(source, shard_id, skipped, "RecordAgeExceeded" if too_old else "RetryAttemptsExhausted",
                         retries)
        source.failures.clear()
        source.limits.pop(shard_id, None)
        source.positions[shard_id] = skipped[-1]["dynamodb"]["SequenceNumber"]
        self._save()
        self.discarded += 1
        return None

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = aws.client("sqs", self.endpoint_url, self.region)
        return self._sqs

    def _on_failure(self, source: StreamSource, shard_id: str, skipped: list[dict], condition: str,
                    retries: int) -> None:
        """What Lambda sends an on-failure destination for a stream batch: where, not what."""
        def at(record: dict) -> str:
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            return (created if isinstance(created, datetime) else datetime.fromtimestamp(float(created or 0))).isoformat()

        info = {"requestContext": {"requestId": f"local-{self.invocations}", "condition": condition,
                                   "approximateInvokeCount": retries + 1,
                                   "functionArn": f"arn:aws:lambda:{self.region}:{aws.ACCOUNT_ID}:function:"
                                                  f"{source.function_name}"},
                "version": "1.0", "timestamp": datetime.now().isoformat(),
                "DDBStreamBatchInfo": {"shardId": shard_id, "streamArn": source.stream_arn,
                                       "startSequenceNumber": skipped[0]["dynamodb"]["SequenceNumber"],
                                       "endSequenceNumber": skipped[-1]["dynamodb"]["SequenceNumber"],
                                       "approximateArrivalOfFirstRecord": at(skipped[0]),
                                       "approximateArrivalOfLastRecord": at(skipped[-1]),
                                       "batchSize": len(skipped)}}
        log.error("streams %s: gave up on %d record(s) of shard %s (%s): sent to the on-failure destination",
                  source.name, len(skipped), shard_id, condition)
        if self.on_failure_queue_url:
            self.sqs.send_message(QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps(info))
