"""Record what each operation of the service really does to AWS: runs the real handlers (the Chalice
app, its SQS handlers, the offline image provider) over moto and captures every DynamoDB, S3 and SQS
request at botocore, with the keys and items it touches and the capacity units it costs.

    .venv/bin/python -m bench.capacity_profile      # writes bench/results/capacity-profile.json

Hooks, as tests/support/ddb_calls.py counts calls: botocore's BUILTIN_HANDLERS (every session made
after `install` gets them) and `dependencies.reset()` so the app's clients are all new. Per request:
`before-parameter-build` sees the API parameters and reads the items about to be written (size
before the write), `after-call` sees the answer and reads them again (size after). The reads go
through a client of our own while the hooks are suspended, so they are never recorded.

Capacity units follow DynamoDB's rules (docs/scaling.md, "Units"): reads 4 KB, writes 1 KB, rounded
up per item (per request for Query); eventually consistent reads half; transactions twice;
a write costs the larger of the item before and after; GSI writes (all attributes projected) cost
the item's size on each index partition it leaves or enters.

Ids are replaced by placeholders ({uid}, {pid}, {aid}, {gid}, {eid}, {preset}, {category}, {day},
{ts}, {app}, {idem}) so the model (bench/capacity.py) can tell a key shared by everyone from one per
user, per avatar or per event.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import statistics
import threading
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any, Callable

from bench.common import RESULTS, ROOT

USER = "capuser"
TABLE_KEYS = {None: ("PK", "SK"), "GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK"),
              "GSI3": ("GSI3PK", "GSI3SK")}
GSIS = ("GSI1", "GSI2", "GSI3")
# GSI1 and GSI2 project every attribute; GSI3 (the sweep index: overdue work, file intents) only keys.
KEYS_ONLY = frozenset({"GSI3"})
PROFILE_PATH = RESULTS / "capacity-profile.json"


# ---- DynamoDB item size and units (docs: "Item sizes and formats", "Read/write capacity units") ----

def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0") or "0"
    return math.ceil(len(digits.rstrip("0") or "0") / 2) + 1


def value_size(value: dict) -> int:
    (kind, raw), = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    raise ValueError(kind)


def item_size(item: dict | None) -> int:
    return sum(len(k.encode()) + value_size(v) for k, v in (item or {}).items())


def read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / 4096))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2


def write_units(size: int, *, transactional: bool = False) -> float:
    return float(max(1, math.ceil(size / 1024)) * (2 if transactional else 1))


def index_writes(index: str, old: dict | None, new: dict | None) -> list[tuple[str, str, int]]:
    """(index pk, index sk, entry size) of each write a table write makes on one GSI (docs: "GSI
    writes"): an entry that appears or goes is one write; a change of its index key is two (the old
    entry deleted, the new one put); a change of other attributes is one write on an index that
    projects them (ALL) and none on a keys-only index; an item left as it was (a refused write) none."""
    hash_name, range_name = TABLE_KEYS[index]

    def key(item: dict | None) -> tuple[str, str] | None:
        if not item or hash_name not in item or range_name not in item:
            return None
        return item[hash_name]["S"], item[range_name]["S"]

    def size(item: dict) -> int:
        if index in KEYS_ONLY:
            return item_size({k: item[k] for k in ("PK", "SK", hash_name, range_name) if k in item})
        return item_size(item)

    before, after = key(old), key(new)
    if before is None and after is None:
        return []
    if before == after:
        if index in KEYS_ONLY or old == new:
            return []
        return [(after[0], after[1], size(new))]
    return [(*k, size(item)) for k, item in ((before, old), (after, new)) if k is not None]


# ---- placeholders ------------------------------------------------------------------------------

class Namer:
    """Concrete ids → placeholders, so keys of one user, avatar or event read as templates."""

    PATTERNS = [
        (re.compile(r"prj_[0-9A-Za-z]+"), "{pid}"),
        (re.compile(r"ava_[0-9A-Za-z]+"), "{aid}"),
        (re.compile(r"gen_[0-9A-Za-z]+"), "{gid}"),
        (re.compile(r"evt-[0-9A-Za-z-]+"), "{eid}"),
        (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"), "{ts}"),
        (re.compile(r"\d{4}-\d{2}-\d{2}"), "{day}"),
        (re.compile(r"IDEM#.+"), "IDEM#{idem}"),
        (re.compile(r"(APP#|APPUSE#)[^#]+$"), r"\1{app}"),
        (re.compile(r"#EVT#[^#]+#"), "#EVT#{app}#"),  # usage dedupe markers are per (user, app, event)
        (re.compile(r"^(USE#\{ts\}#)[^#]+(#\{eid\})$"), r"\1{app}\2"),
        (re.compile(r"#H#\d+$"), "#H#{n}"),  # one of an avatar's history shards (models.history_pk)
        (re.compile(r"^(\{day\}#)[a-z0-9-]+$"), r"\1{app}"),  # an avatar's daily counter of one app (compare)
        (re.compile(r"^(SWEEP|FILES)#\d+$"), r"\1#{n}"),  # GSI3 shards (models.sweep_pk, file_intent_shard)
        (re.compile(r"^(\{ts\}#)?FILE#.+$"), r"\1FILE#{file}"),  # one derived file's intent (and its GSI3 entry)
        (re.compile(r"whk_[0-9A-Za-z]+"), "{wid}"),
        (re.compile(r"^(RATE#[A-Z]+#\{uid\}#)\d+$"), r"\1{second}"),  # a rate window: one user, one second
        (re.compile(r"^(D#\{ts\}#|E#|A#)evt_[0-9a-z]+"), r"\1{evt}"),  # webhook deliveries of one event
    ]

    def __init__(self, user: str, presets: dict[str, str], personas: dict[str, str], *,
                 user_pattern: str | None = None) -> None:
        self.user = re.compile(user_pattern or re.escape(user))
        self.presets = presets  # id -> category
        self.personas = personas

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        for catalogue, name in ((self.presets, "{preset}"), (self.personas, "{persona}")):
            for item_id, category in catalogue.items():
                if text == item_id:
                    return name
                if text == f"{category}#{item_id}":
                    return "{category}#" + name
        text = self.user.sub("{uid}", text) if "#" in text or "/" in text else text
        for pattern, name in self.PATTERNS:
            text = pattern.sub(name, text)
        return text


# ---- the recorder ---------------------------------------------------------------------------------

class Recorder:
    """Every AWS request of clients made after install(), while an operation is being recorded."""

    def __init__(self, table: str, namer: Namer) -> None:
        self.table = table
        self.name = namer
        self._local = threading.local()
        self.op: dict | None = None
        self._request = 0
        self._failed = False
        self._lookup: Any = None
        self._handlers = [("before-parameter-build", self._before), ("after-call", self._after)]
        self._lock = threading.Lock()  # the local stack's server and feeder threads record at once

    def install(self) -> None:
        from botocore import handlers

        import boto3

        self._lookup = boto3.client("dynamodb", region_name=os.environ.get("AWS_REGION", "us-east-1"),
                                    endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        handlers.BUILTIN_HANDLERS.extend(self._handlers)

    def uninstall(self) -> None:
        from botocore import handlers

        for h in self._handlers:
            if h in handlers.BUILTIN_HANDLERS:
                handlers.BUILTIN_HANDLERS.remove(h)

    # -- item lookups, never recorded
    def _get(self, key: dict) -> dict | None:
        self._local.suspended = True
        started = time.perf_counter()
        try:
            return self._lookup.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        finally:
            self._local.suspended = False
            if self.op is not None:  # the recorder's own time is not the handler's
                self.op["lookup_seconds"] = self.op.get("lookup_seconds", 0.0) + time.perf_counter() - started

    def _active(self) -> bool:
        return self.op is not None and not getattr(self._local, "suspended", False)

    def _before(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        if not self._active():
            return
        service = model.service_model.service_name
        pending = {"service": service, "op": model.name, "params": params}
        if service == "s3" and "Body" in params:  # measured now: botocore reads the body while sending
            pending["body_bytes"] = _body_size(params["Body"])
        if service == "dynamodb":
            pending["before"] = [(k, self._get(k)) for k, _kind in _write_keys(model.name, params)]
        pending["t0"] = time.perf_counter()
        context["capacity_pending"] = pending  # the same dict reaches after-call (presigning never does)

    def _after(self, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        pending = context.pop("capacity_pending", None)
        if pending is None or not self._active():
            return
        with self._lock:
            self._record(pending, parsed)

    def _record(self, pending: dict, parsed: dict) -> None:
        op = self.op
        op["seq"] = op.get("seq", 0) + 1
        self._request = op["seq"]  # under the lock: every touch of this request carries its number
        op["aws_seconds"] += time.perf_counter() - pending["t0"]
        service, name, params = pending["service"], pending["op"], pending["params"]
        op["requests"][f"{service}.{name}"] += 1
        error = (parsed.get("Error") or {}).get("Code")
        self._failed = error is not None
        if error is not None:  # refused requests cost units too (a cancelled transaction is billed)
            reasons = sorted({r.get("Code", "None") for r in parsed.get("CancellationReasons") or []} - {"None"})
            op.setdefault("errors", defaultdict(int))[f"{service}.{name} {error} {','.join(reasons)}".strip()] += 1
        if service == "dynamodb":
            self._dynamodb(name, params, parsed, pending["before"])
        elif service == "s3":
            key = self.name(params.get("Key", ""))
            prefix = key.split("/", 1)[0] + "/" if key else ""
            if name == "PutObject":
                size = pending["body_bytes"]
                op["s3_put_bytes"][prefix] += size
                op.setdefault("s3_puts", defaultdict(int))[prefix] += 1
            elif name == "GetObject":
                op.setdefault("s3_gets", defaultdict(int))[prefix] += 1
            elif name == "DeleteObjects":
                op["s3_deleted_objects"] += len(params.get("Delete", {}).get("Objects", []))
            elif name == "DeleteObject":
                op["s3_deleted_objects"] += 1
        elif service == "sqs":
            queue = params.get("QueueUrl", "").rsplit("/", 1)[-1]
            op["sqs"][f"{name} {queue}"] += len(params.get("Entries", [])) or 1
        elif service == "events" and name == "PutEvents":  # what reaches the bus, by event type
            for entry in params.get("Entries", []):
                op.setdefault("events_published", defaultdict(int))[entry.get("DetailType", "?")] += 1

    def _touch(self, kind: str, pk: str, sk: str | None, units: float, size: int, index: str | None = None,
               transactional: bool = False, created: bool = False) -> None:
        self.op["touches"].append({"request": self._request, "failed": self._failed, "index": index,
                                   "pk": self.name(pk), "sk": self.name(sk), "kind": kind,
                                   "units": units, "bytes": size, "transactional": transactional,
                                   "created": created})

    def _dynamodb(self, name: str, params: dict, parsed: dict, before: list) -> None:
        if params.get("TableName", self.table) != self.table and name not in ("TransactWriteItems", "BatchGetItem",
                                                                              "TransactGetItems", "BatchWriteItem"):
            return  # another table: not the one this profile models
        if name == "GetItem":
            item = parsed.get("Item")
            key = params["Key"]
            self._touch("read", key["PK"]["S"], key["SK"]["S"],
                        read_units(item_size(item), consistent=bool(params.get("ConsistentRead"))), item_size(item))
        elif name == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                found = {(i["PK"]["S"], i["SK"]["S"]): i for i in parsed.get("Responses", {}).get(table, [])}
                for key in request["Keys"]:
                    item = found.get((key["PK"]["S"], key["SK"]["S"]))
                    self._touch("read", key["PK"]["S"], key["SK"]["S"],
                                read_units(item_size(item), consistent=bool(request.get("ConsistentRead"))),
                                item_size(item))
        elif name == "TransactGetItems":
            for entry in params["TransactItems"]:
                key = entry["Get"]["Key"]
                item = self._get(key)
                self._touch("read", key["PK"]["S"], key["SK"]["S"],
                            read_units(item_size(item), consistent=True, transactional=True), item_size(item),
                            transactional=True)
        elif name == "Query":
            self._query(params, parsed)
        else:
            transactional = name == "TransactWriteItems"
            for (key, kind), (_, old) in zip(_write_keys(name, params), before):
                new = self._get(key)
                size = max(item_size(old), item_size(new))
                if kind == "ConditionCheck":
                    size = item_size(old)
                created = old is None and new is not None
                self._touch("write", key["PK"]["S"], key["SK"]["S"], write_units(size, transactional=transactional),
                            size, transactional=transactional, created=created)
                if kind == "ConditionCheck":
                    continue
                for index in GSIS:
                    for pk, sk, entry in index_writes(index, old, new):
                        self._touch("write", pk, sk, write_units(entry), entry, index=index, created=created)

    def _query(self, params: dict, parsed: dict) -> None:
        index = params.get("IndexName")
        hash_name, range_name = TABLE_KEYS[index]
        names = params.get("ExpressionAttributeNames", {})
        values = params.get("ExpressionAttributeValues", {})
        placeholder = next(p for p, real in names.items() if real == hash_name)
        match = re.search(re.escape(placeholder) + r"\s*=\s*(:\w+)", params["KeyConditionExpression"])
        pk = values[match.group(1)]["S"]
        items = parsed.get("Items", [])
        sizes = [item_size(i) for i in items]
        # A filter does not lower the read: scale what came back by what was examined.
        scanned = parsed.get("ScannedCount", len(items))
        total = sum(sizes) * (scanned / len(items) if items else 0)
        units = read_units(int(total), consistent=bool(params.get("ConsistentRead")))
        if not items:
            self._touch("read", pk, None, units, 0, index=index)
            return
        for item, size in zip(items, sizes):
            self._touch("read", pk, item[range_name]["S"], units * size / sum(sizes), size, index=index)


def key_requests(op: dict, *, succeeded_only: bool = False) -> dict[tuple, float]:
    """DynamoDB requests per key template and operation: ("read"|"write", index, pk) counts the
    requests that touched the partition, ("item-write", index, pk, sk) every item written."""
    seen: set = set()
    counts: dict[tuple, float] = defaultdict(float)
    for t in op["touches"]:
        if succeeded_only and t.get("failed"):
            continue
        key = (t["kind"], t["index"], t["pk"])
        if (t["request"], key) not in seen:
            seen.add((t["request"], key))
            counts[key] += 1
        if t["kind"] == "write":
            counts[("item-write", t["index"], t["pk"], t["sk"])] += 1
    return dict(counts)


def _body_size(body: Any) -> int:
    if isinstance(body, (bytes, bytearray, str)):
        return len(body)
    at = body.tell()  # a file object: measured without consuming it
    size = body.seek(0, 2) - at
    body.seek(at)
    return size


def _write_keys(name: str, params: dict) -> list[tuple[dict, str]]:
    """(primary key, action) of every item a write request touches."""
    def key_of(item: dict) -> dict:
        return {"PK": item["PK"], "SK": item["SK"]}

    if name == "PutItem":
        return [(key_of(params["Item"]), "Put")]
    if name in ("UpdateItem", "DeleteItem"):
        return [(params["Key"], name[:-4])]
    if name == "TransactWriteItems":
        out = []
        for entry in params["TransactItems"]:
            (action, body), = entry.items()
            out.append((key_of(body["Item"]) if action == "Put" else body["Key"], action))
        return out
    if name == "BatchWriteItem":
        out = []
        for requests in params["RequestItems"].values():
            for r in requests:
                if "PutRequest" in r:
                    out.append((key_of(r["PutRequest"]["Item"]), "Put"))
                else:
                    out.append((r["DeleteRequest"]["Key"], "Delete"))
        return out
    return []


# ---- the operations -----------------------------------------------------------------------------

def photo(width: int = 2400, height: int = 1800) -> bytes:
    """A camera-like JPEG: a gradient with sensor-like noise, so it compresses like a photo."""
    from PIL import Image

    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.merge("RGB", [Image.effect_noise((width, height), 24) for _ in range(3)])
    out = io.BytesIO()
    Image.blend(base, noise, 0.35).save(out, "JPEG", quality=92)
    return out.getvalue()


_SPENT = None  # a stream record already handed on (see StreamTap.drain)


class StreamTap:
    """The table's stream as Lambda's event source reads it: `drain()` returns the records written
    since the last call, in Lambda's shape. Its client is made before the recorder is installed, so
    its reads are never recorded."""

    def __init__(self, table: str) -> None:
        import boto3

        from local.streams import lambda_stream_record

        self._shape = lambda_stream_record
        # moto routes DynamoDB Streams only for a URL path of "/" (tests/functional/test_events.py).
        self.streams = boto3.client("dynamodbstreams", region_name="us-east-1",
                                    endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com/")
        self.arn = boto3.client("dynamodb", region_name="us-east-1").describe_table(
            TableName=table)["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str] = {}
        self.shard = self._moto_shard(table)
        self.read = len(self.shard.items) if self.shard is not None else 0

    @staticmethod
    def _moto_shard(table: str) -> Any:
        """moto's own shard, read in process: GetRecords over moto serialises every record again and
        cost ~40 ms a call (~5 s per recording). The same records, in the same order."""
        try:
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.dynamodb.models import dynamodb_backends

            return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table].stream_shard
        except (ImportError, KeyError, AttributeError):
            return None

    def drain(self) -> list[dict]:
        if self.shard is not None:
            import copy

            fresh = self.shard.items[self.read:]
            out = [self._shape(copy.deepcopy(r.record), self.arn, "us-east-1") for r in fresh]
            # Records handed on are dropped from moto's shard (their sequence numbers stay taken: the
            # list keeps its length): moto deep-copies the whole table, its stream included, on every
            # transaction, and a recording's few hundred records with their images doubled its time.
            self.shard.items[self.read:self.read + len(fresh)] = [_SPENT] * len(fresh)
            self.read += len(fresh)
            return out
        out: list[dict] = []
        for shard in self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            sid = shard["ShardId"]
            iterator = self.iterators.get(sid) or self.streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records = page.get("Records") or []
                out += [self._shape(r, self.arn, "us-east-1") for r in records]
                iterator = page.get("NextShardIterator") or iterator
                self.iterators[sid] = iterator
                if not records:
                    break
        return out


def stream_summary(records: list[dict]) -> dict:
    """What the stream worker is handed for one operation: records by kind of change and by item
    template, and the events they map to (chalicelib.events.mapping, the mapping the worker runs)."""
    from chalicelib.events import mapping as events

    out: dict = {"records": len(records), "by_change": defaultdict(int), "events": defaultdict(int),
                 "resource_records": 0}
    for r in records:
        out["by_change"][r["eventName"]] += 1
        # a project, avatar or generation item: the only records that can publish (an event source
        # filter on these keys would drop the rest before the worker is invoked)
        out["resource_records"] += events.user_of(r) is not None
        for e in events.from_stream_record(r):
            out["events"][e["type"]] += 1
    return out


class ModelledClock:
    """A Lambda context whose remaining time follows the production budget: the function's timeout,
    minus the wall time so far, minus PROVIDER_SECONDS per provider call made (the offline provider
    answers at once), minus `shift` — the difference between what the worker needs per image in
    production (the provider's and the classifier's timeouts + saving) and what it needs offline, so
    the worker's "is there time for one more image?" decides as it would on AWS."""

    def __init__(self, timeout: float, shift: float, calls: Callable[[], int], provider_seconds: float) -> None:
        from local.feeder import LambdaContext

        self._context = LambdaContext("generation_worker", timeout_seconds=timeout)
        self.started = time.monotonic()
        self.timeout, self.shift, self.calls, self.provider_seconds = timeout, shift, calls, provider_seconds
        self.at_start = calls()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started + (self.calls() - self.at_start) * self.provider_seconds
        return max(0, int((self.timeout - elapsed - self.shift) * 1000))


class Session:
    """The Chalice app and its handlers over moto, one user with a realistic account."""

    def __init__(self, client: Any, outputs: dict, recorder: Recorder, tap: StreamTap | None = None,
                 timing: bool = True) -> None:
        from tests.functional.conftest import PREFIX, auth

        self.client, self.outputs, self.recorder = client, outputs, recorder
        self.prefix, self.headers = PREFIX, auth(USER)
        self.ops: dict[str, dict] = {}
        self.tap, self.timing = tap, timing
        self.stream_records: dict[str, list[dict]] = {}

    def api(self, method: str, path: str, data: dict | None = None, headers: dict | None = None) -> Any:
        resp = getattr(self.client.http, method)(self.prefix + path, headers={**self.headers, **(headers or {})},
                                                 body=json.dumps(data).encode() if data is not None else None)
        assert resp.status_code < 300, (method, path, resp.status_code, resp.body)
        return resp

    def invoke(self, handler: str, queue_key: str, bodies: list[str], context: Any = None) -> Any:
        """Run an SQS handler on these message bodies, as Lambda calls it, with the function's
        configured timeout (chalice.test's invoke gives every function 3 s, too short for the
        generation worker's time budget)."""
        from local.feeder import LambdaContext
        from local.server import chalice_config

        url = self.outputs[queue_key]
        event = self.client.events.generate_sqs_event(queue_name=url.rsplit("/", 1)[1], message_bodies=bodies)
        timeout = float(chalice_config(handler, "dev").lambda_timeout or 60)
        from app import app

        payload = app.handler_map[handler](event, context or LambdaContext(handler, timeout_seconds=timeout))
        assert not (payload or {}).get("batchItemFailures"), payload
        return payload

    def deliver(self, handler: str, queue_key: str, max_messages: int, context: Any = None) -> int:
        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        url = self.outputs[queue_key]
        self.recorder.op, op = None, self.recorder.op
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=0,
                                   AttributeNames=["All"]).get("Messages", [])
        self.recorder.op = op
        if msgs:
            self.invoke(handler, queue_key, [m["Body"] for m in msgs], context)
            self.recorder.op = None
            for m in msgs:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            self.recorder.op = op
        return len(msgs)

    @staticmethod
    def _new_op(function: str, per: int) -> dict:
        return {"function": function, "per": per, "touches": [], "requests": defaultdict(int), "aws_seconds": 0.0,
                "provider_calls": 0, "s3_put_bytes": defaultdict(int), "s3_deleted_objects": 0,
                "sqs": defaultdict(int), "events_published": defaultdict(int), "http_out": 0}

    def _timed(self, op: dict, run: Callable[[], Any]) -> Any:
        self.recorder.op = op
        started = time.perf_counter()
        try:
            return run()
        finally:
            self.recorder.op = None
            op["seconds"] = time.perf_counter() - started

    def record(self, name: str, function: str, run: Callable[[], Any], per: int = 1,
               again: Callable[[], Callable[[], Any]] | None = None, repeats: int = 4) -> Any:
        """Run `run` with the recorder on; the profile keeps the calls per `per` operations.

        The handler's own time (outside AWS requests and the recorder's lookups) is noisy on a
        shared machine: with `again` (prepares, unrecorded, and returns one more run) it is the
        median of `repeats` + 1 runs; the calls are the first run's."""
        op = self._new_op(function, per)
        if self.tap is not None:
            self.tap.drain()  # what came before (set-up, earlier repeats) is not this operation's
        result = self._timed(op, run)
        if self.tap is not None:
            records = self.tap.drain()
            op["stream"] = stream_summary(records)
            self.stream_records[name] = records
        own = [op["seconds"] - op["aws_seconds"] - op.get("lookup_seconds", 0.0)]
        for _ in range(repeats if again is not None and self.timing else 0):
            once = again()
            scratch = self._new_op(function, per)
            self._timed(scratch, once)
            own.append(scratch["seconds"] - scratch["aws_seconds"] - scratch.get("lookup_seconds", 0.0))
        op["own_seconds"] = max(0.0, statistics.median(own))
        op["own_seconds_runs"] = own
        body = getattr(result, "body", b"") or b""
        op["image_urls"] = body.count(b"thumbnailUrl\":\"http") if isinstance(body, bytes) else 0
        self.ops[name] = op
        return result

    def record_stream(self, name: str) -> None:
        """The stream worker on the records operation `name` wrote, as one batch (in production a batch
        holds up to 100 records of many operations; the per-record work is the same, and the Query of a
        user's webhooks is made once per user and batch, so this is the upper bound)."""
        from app import app
        from local.feeder import LambdaContext

        records = self.stream_records.get(name) or []
        if not records:
            return
        driver = self.ops[name]

        def run() -> Any:
            payload = app.handler_map["stream_worker"]({"Records": records},
                                                       LambdaContext("stream_worker", timeout_seconds=60))
            assert not (payload or {}).get("batchItemFailures"), payload
            return payload

        op = self._new_op("stream_worker", driver["per"])
        self._timed(op, run)
        op["own_seconds"] = max(0.0, op["seconds"] - op["aws_seconds"] - op.get("lookup_seconds", 0.0))
        op["records"], op["driven_by"], op["image_urls"] = len(records), name, 0
        self.ops[f"stream_worker ({name})"] = op


def record_profile(*, timing: bool = True) -> dict:
    """Every operation of the traffic model, recorded once at steady state. timing=False skips the
    repeated runs that only steady the handlers' measured own time (the calls are the first run's):
    what the tests use, since they check calls, not times."""
    import boto3
    from moto import mock_aws

    from chalicelib import dependencies
    from tests.functional.conftest import GatewayClient, SECRET

    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1", "JWT_SECRET": SECRET, "STAGE": "test", "GENERATION_PROVIDER": "offline",
           "GENERATION_BACKOFF_SECONDS": "0", "WEBHOOK_ALLOW_PRIVATE": "1"}
    saved = {k: os.environ.get(k) for k in [*env, "AWS_ENDPOINT_URL"]}
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            from local.provision import provision

            outputs = provision(endpoint_url=None, region="us-east-1")
            for key, name in {"TABLE_NAME": "TableName", "UPLOAD_BUCKET": "UploadBucket",
                              "UPLOAD_QUEUE_URL": "UploadQueueUrl",
                              "GENERATION_QUEUE_URL": "GenerationQueueUrl",
                              "GENERATION_DLQ_URL": "GenerationDlqUrl",
                              "USAGE_EVENTS_QUEUE_URL": "UsageEventsQueueUrl",
                              "CLEANUP_QUEUE_URL": "CleanupQueueUrl", "EVENT_BUS_NAME": "EventBusName",
                              "WEBHOOK_QUEUE_URL": "WebhookQueueUrl", "WEBHOOK_DLQ_URL": "WebhookDlqUrl",
                              "STREAM_RECORDS_DLQ_URL": "StreamRecordsDlqUrl"}.items():
                saved.setdefault(key, os.environ.get(key))
                os.environ[key] = outputs[name]
            return _record(outputs, boto3, dependencies, GatewayClient, timing=timing)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        from chalicelib import dependencies as deps_module

        deps_module.reset()


def _record(outputs: dict, boto3: Any, dependencies: Any, GatewayClient: Any, *, timing: bool = True) -> dict:
    from chalicelib.presets import service as presets
    from infra.seed import load_documents
    from tests.support import images as img
    from tests.support.usage import event

    presets_doc, personas_doc = load_documents()
    namer = Namer(USER, {p["id"]: p["category"] for p in presets_doc["presets"]},
                  {p["id"]: p["category"] for p in personas_doc["personaExamples"]})
    recorder = Recorder(outputs["TableName"], namer)
    tap = StreamTap(outputs["TableName"])  # made before install: its reads are never recorded
    recorder.install()
    dependencies.reset()  # the app's clients are made from here on, so they carry the hooks
    from tests.support.webhooks import Receiver

    receiver = Receiver().__enter__()  # the user's webhook endpoint (answers 200 unless scripted)
    try:
        presets.seed(presets_doc, personas_doc, storage=dependencies.get_deps().storage,
                     render=lambda entry: img.jpeg(512, 640))
        from app import app

        with GatewayClient(app) as client:
            s = Session(client, outputs, recorder, tap, timing=timing)
            provider = dependencies.get_deps().provider
            generate = provider.generate

            provider_calls = [0]

            def counted(*args: Any, **kwargs: Any) -> Any:
                provider_calls[0] += 1
                if s.recorder.op is not None:
                    s.recorder.op["provider_calls"] += 1
                    request = args[0] if args else kwargs["request"]
                    s.recorder.op["provider_megapixels"] = request.width * request.height / 1e6
                return generate(*args, **kwargs)

            provider.generate = counted  # the provider is not AWS: counted at the app's own interface
            harness = boto3.session.Session()  # made after install: its requests can be recorded
            s3 = harness.client("s3", region_name="us-east-1")
            sqs = harness.client("sqs", region_name="us-east-1")
            upload_bytes = photo()
            preset = presets_doc["presets"][0]

            # An account in use: a few projects, ready avatars, generations and usage behind it.
            s.api("post", "/webhooks", {"url": receiver.url})  # one webhook, subscribed to every event
            pid = s.api("post", "/projects", {"name": "Campaign"}).json_body["id"]
            for n in range(3):
                s.api("post", "/projects", {"name": f"Other {n}"})

            def upload() -> str:
                created = s.api("post", f"/projects/{pid}/avatars/upload",
                                {"name": "Portrait", "contentType": "image/jpeg", "size": len(upload_bytes)})
                fields = created.json_body["upload"]["fields"]
                s.recorder.op, op = None, s.recorder.op  # the browser's POST is recorded in its own op
                s3.put_object(Bucket=outputs["UploadBucket"], Key=fields["key"], Body=upload_bytes,
                              ContentType=fields["Content-Type"])
                s.recorder.op = op
                return created.json_body["avatar"]["id"]

            avatar_ids = [upload() for _ in range(3)]
            while s.deliver("upload_worker", "UploadQueueUrl", 5):
                pass
            aid = avatar_ids[0]
            for n in range(20):
                s.api("post", f"/avatars/{aid}/usage", {"eventId": f"evt-warm-{n}", "appId": f"app-{n % 3}",
                                                        "appName": "App", "action": "use"})

            gen_request = {"prompt": "confident business woman", "name": "Sarah", "gender": "female",
                           "style": "professional"}  # the API's default size
            # -- recorded: the reads of a session
            reads = {"GET /projects": "/projects", "GET /projects/{id}": f"/projects/{pid}",
                     "GET /projects/{id}/avatars": f"/projects/{pid}/avatars", "GET /avatars/{id}": f"/avatars/{aid}",
                     "GET /stats": "/stats", "GET /avatars/{id}/usage-history": f"/avatars/{aid}/usage-history",
                     "GET /projects/{id}/generations": f"/projects/{pid}/generations"}
            for name, path in reads.items():
                def read(path: str = path) -> Any:
                    return s.api("get", path)

                s.record(name, "api_handler", read, again=lambda read=read: read)
            presets.invalidate_cache()
            s.record("gallery cache refresh", "api_handler", lambda: s.api("get", "/presets"))
            s.record("GET /presets", "api_handler", lambda: s.api("get", "/presets"),
                     again=lambda: lambda: s.api("get", "/presets"))
            s.record("persona examples cache refresh", "api_handler", lambda: s.api("get", "/persona-examples"))
            s.record("GET /persona-examples", "api_handler", lambda: s.api("get", "/persona-examples"),
                     again=lambda: lambda: s.api("get", "/persona-examples"))

            # -- an upload: the API, the browser's POST to S3, the worker
            created: dict = {}

            def ask_upload():
                resp = s.api("post", f"/projects/{pid}/avatars/upload",
                             {"name": "Portrait", "contentType": "image/jpeg", "size": len(upload_bytes)})
                created.update(resp.json_body)
                return resp

            s.record("POST /projects/{id}/avatars/upload", "api_handler", ask_upload)
            fields = created["upload"]["fields"]
            s.record("browser POST to S3", "client", lambda: s3.put_object(
                Bucket=outputs["UploadBucket"], Key=fields["key"], Body=upload_bytes,
                ContentType=fields["Content-Type"]))
            def next_upload() -> Callable[[], Any]:
                upload()  # the API call and the browser's POST, not timed
                return lambda: s.deliver("upload_worker", "UploadQueueUrl", 1)

            s.record("upload_worker (per upload)", "upload_worker",
                     lambda: s.deliver("upload_worker", "UploadQueueUrl", 1), again=next_upload, repeats=2)

            # -- generations: the API, the worker (provider call), a status poll
            started: dict = {}

            def start(path: str, data: dict, key: str):
                resp = s.api("post", path, data, headers={"Idempotency-Key": key})
                started.update(resp.json_body)
                return resp

            s.record("POST /projects/{id}/avatars/generate", "api_handler",
                     lambda: start(f"/projects/{pid}/avatars/generate", gen_request, "cap-gen-1"))
            gid = started["id"]
            s.record("GET /generations/{id}", "api_handler", lambda: s.api("get", f"/generations/{gid}"),
                     again=lambda: lambda: s.api("get", f"/generations/{gid}"))
            s.record("generation_worker (per generation)", "generation_worker",
                     lambda: s.deliver("generation_worker", "GenerationQueueUrl", 1))
            s.record("POST /presets/{id}/generate", "api_handler",
                     lambda: start(f"/presets/{preset['id']}/generate", {"projectId": pid}, "cap-gen-2"))
            s.deliver("generation_worker", "GenerationQueueUrl", 1)

            # -- usage events: over HTTP, and from the queue (a full batch of 10, as the event source sends)
            def usage_http() -> Callable[[], Any]:
                body = {"eventId": f"evt-http-{uuid.uuid4().hex}", "appId": "app-0", "appName": "App", "action": "use"}
                return lambda: s.api("post", f"/avatars/{aid}/usage", body)

            s.record("POST /avatars/{id}/usage", "api_handler", usage_http(), again=usage_http)

            def send_batch() -> Any:
                return sqs.send_message_batch(QueueUrl=outputs["UsageEventsQueueUrl"], Entries=[
                    {"Id": str(n), "MessageBody": json.dumps(event(USER, aid, appId=f"app-{n % 3}"))}
                    for n in range(10)])

            def next_batch() -> Callable[[], Any]:
                send_batch()  # not timed: the other app's request
                return lambda: s.deliver("usage_worker", "UsageEventsQueueUrl", 10)

            s.record("app SendMessageBatch (10 events)", "client", send_batch, per=10)
            s.record("usage_worker (per event)", "usage_worker",
                     lambda: s.deliver("usage_worker", "UsageEventsQueueUrl", 10), per=10, again=next_batch)

            # -- a job of 4 images under the production time budget: it is handed on (a new message)
            _record_long_job(s, pid, gen_request, counter=lambda: provider_calls[0])

            # -- the stream worker on what each operation wrote, then the webhook deliveries it queued
            for name in list(s.stream_records):
                s.record_stream(name)
            _record_webhooks(s, receiver, sqs)
            # -- the sweeper: the overdue index (per run) and expired file intents (per file)
            _record_sweeper(s)
            for name in list(s.stream_records):  # what the deliveries and the sweeper wrote
                if f"stream_worker ({name})" not in s.ops:
                    s.record_stream(name)
            profile = {"ops": s.ops, "upload_bytes": len(upload_bytes), "presets": len(presets_doc["presets"]),
                       "preset_categories": len({p["category"] for p in presets_doc["presets"]}),
                       "webhooks_per_user": 1}
    finally:
        receiver.__exit__(None, None, None)
        recorder.uninstall()
    return _plain(profile)


def _record_long_job(s: Session, pid: str, gen_request: dict, counter: Callable[[], int]) -> None:
    """A job of 4 images (the most a job makes), each run given the production time budget
    (ModelledClock): the worker makes what fits, hands the rest on through a new message, and the
    run for that message finishes the job. Both runs are one operation, per job."""
    import boto3

    from chalicelib import dependencies

    from chalicelib.generation import safety
    from chalicelib.generation import worker
    from chalicelib.generation.spec import job_message
    from local.server import chalice_config

    from bench.capacity import PROVIDER_SECONDS

    settings = dependencies.get_deps().settings
    production = settings.flux_timeout_seconds + settings.safety_timeout_seconds + worker.SAVE_SECONDS
    here = worker.image_seconds(settings, classifier=isinstance(safety.checker_for(settings), safety.Checker))
    timeout = float(chalice_config("generation_worker", "dev").lambda_timeout or 120)
    resp = s.api("post", f"/projects/{pid}/avatars/generate", {**gen_request, "numImages": 4},
                 headers={"Idempotency-Key": "cap-gen-4"})
    gid = resp.json_body["id"]

    def clock() -> ModelledClock:
        return ModelledClock(timeout, production - here, counter, PROVIDER_SECONDS)

    def run() -> None:
        s.deliver("generation_worker", "GenerationQueueUrl", 1, context=clock())
        runs = 1
        while runs < 8:  # the hand-on message, as Lambda would deliver it once its delay has passed
            current = s.recorder._get({"PK": {"S": f"U#{USER}#G#{gid}"}, "SK": {"S": "META"}}) or {}
            if current.get("status", {}).get("S") in ("completed", "failed"):
                break
            s.invoke("generation_worker", "GenerationQueueUrl", [job_message(USER, gid)], clock())
            runs += 1
        s.recorder.op["runs"] = runs

    s.record("generation_worker (job of 4 images)", "generation_worker", run)
    s.recorder.op = None
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.purge_queue(QueueUrl=s.outputs["GenerationQueueUrl"])  # the delayed hand-on messages, delivered above
    op = s.ops["generation_worker (job of 4 images)"]
    op["budget"] = {"timeout": timeout, "per_image_needed": production, "provider_seconds": PROVIDER_SECONDS}


def _record_webhooks(s: Session, receiver: Any, sqs: Any) -> None:
    """One delivery the endpoint accepts, and one attempt it refuses (HTTP 500: recorded, the next
    attempt queued with its delay), from the messages the stream worker queued."""
    for name, status in (("webhook_worker (per delivery)", 200), ("webhook_worker (per failed attempt)", 500)):
        receiver.script = [status]
        before = len(receiver.deliveries)
        s.record(name, "webhook_worker", lambda: s.deliver("webhook_worker", "WebhookQueueUrl", 1))
        s.ops[name]["http_out"] = len(receiver.deliveries) - before
        s.ops[name]["http_failed"] = status >= 300
    receiver.script = []
    s.recorder.op = None
    sqs.purge_queue(QueueUrl=s.outputs["WebhookQueueUrl"])


def _record_sweeper(s: Session) -> None:
    """The sweeper's fixed part (the overdue Queries on GSI3's SWEEP# shards, once per run) and its
    part per derived file (the intent's Query share, the avatar BatchGet, the intent's delete)."""
    from datetime import datetime, timedelta, timezone

    from chalicelib import clock, dependencies
    from chalicelib.avatars import file_intents
    from chalicelib.housekeeping import store as housekeeping_store
    from chalicelib.housekeeping import sweeper

    later = datetime.now(timezone.utc) + timedelta(seconds=file_intents.FILE_GRACE_SECONDS + 60)
    s.record("sweeper: overdue index (per run)", "sweeper", lambda: housekeeping_store.overdue(clock.iso(later), limit=sweeper.OVERDUE_PER_SHARD))
    files = len(file_intents.expired(later))
    storage = dependencies.get_deps().storage
    s.record("sweeper: file intents (per file)", "sweeper", lambda: sweeper.check_expired_intents(storage, later),
             per=max(1, files))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def main() -> int:
    profile = record_profile()
    RESULTS.mkdir(parents=True, exist_ok=True)
    PROFILE_PATH.write_text(json.dumps(profile, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PROFILE_PATH.relative_to(ROOT)}: {len(profile['ops'])} operations")
    for name, op in profile["ops"].items():
        reads = sum(t["units"] for t in op["touches"] if t["kind"] == "read") / op["per"]
        writes = sum(t["units"] for t in op["touches"] if t["kind"] == "write") / op["per"]
        print(f"  {name:40s} {dict(op['requests'])}  RRU {reads:.1f}  WRU {writes:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
