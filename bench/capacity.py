"""Capacity model: the service's recorded access patterns × stated traffic → load, hot keys, limits, cost.

    .venv/bin/python -m bench.capacity            # records the profile over moto, then models it
    .venv/bin/python -m bench.capacity --profile bench/results/capacity-profile.json   # model only

Nothing about the access patterns is typed in here: which keys each operation reads and writes,
the units it costs, its S3 and SQS requests, the bytes it stores and its time in the handler come
from bench/capacity_profile.py, which runs the real handlers over moto. What is stated here, with its
source, is the traffic (per active user per day), AWS limits and prices, request latencies on AWS
and the provider's. docs/scaling.md explains the model and its results.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, today, write

DAY = 86_400
MONTH_DAYS = 30

# ---- AWS limits (us-east-1 defaults) ---------------------------------------------------------------
DDB_DOCS = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide"
LIMITS = {
    # Per partition, and so per item and per partition key once adaptive capacity has isolated it.
    "partition_read_units": (3_000, f"{DDB_DOCS}/bp-partition-key-design.html"),
    "partition_write_units": (1_000, f"{DDB_DOCS}/bp-partition-key-design.html"),
    # On-demand table default maximum throughput (a service quota, can be raised).
    "table_read_units": (40_000, f"{DDB_DOCS}/ServiceQuotas.html"),
    "table_write_units": (40_000, f"{DDB_DOCS}/ServiceQuotas.html"),
    "lambda_account_concurrency": (1_000, "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"),
    "api_gateway_rps": (10_000, "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"),
    "s3_writes_per_prefix": (3_500,
                             "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html"),
    "eventbridge_put_events_rps": (10_000, "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html"),
    "s3_reads_per_prefix": (5_500,
                            "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html"),
    # A new on-demand table serves up to these at once; afterwards up to twice its previous peak
    # (within 30 days) at once, more only after it has scaled (or with warm throughput set).
    "on_demand_initial_write_units": (4_000, f"{DDB_DOCS}/on-demand-capacity-mode.html"),
    "on_demand_initial_read_units": (12_000, f"{DDB_DOCS}/on-demand-capacity-mode.html"),
    "sqs_in_flight_per_queue": (120_000,
                                "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html"),
    "lambda_stream_batches_per_shard": (1, "https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html "
                                           "(ParallelizationFactor 1: one batch per shard at a time; up to 10)"),
}
LIMIT_SOURCES_EXTRA = {
    "capacity units": f"{DDB_DOCS}/read-write-operations.html",
    "transactions cost 2x": f"{DDB_DOCS}/transaction-apis.html#transaction-capacity-handling",
    "GSI write cost": f"{DDB_DOCS}/GSI.html#GSI.ThroughputConsiderations.Writes",
    "SQS event source MaximumConcurrency": "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html",
    "SQS standard throughput (nearly unlimited)":
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html",
}

# ---- prices (us-east-1 list prices, the same as docs/deploy.md "Cost per 1,000 avatars") -----------
PRICES = {
    "lambda_gb_second": (0.0000166667, "https://aws.amazon.com/lambda/pricing/ (x86)"),
    "lambda_request": (0.20 / 1e6, "https://aws.amazon.com/lambda/pricing/"),
    "api_gateway_request": (3.50 / 1e6, "https://aws.amazon.com/api-gateway/pricing/ (REST, first 333 M)"),
    "dynamodb_read_unit": (0.125 / 1e6, "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_write_unit": (0.625 / 1e6, "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_gb_month": (0.25 + 0.20, "https://aws.amazon.com/dynamodb/pricing/on-demand/ (storage + PITR)"),
    "s3_gb_month": (0.023, "https://aws.amazon.com/s3/pricing/ (Standard, first 50 TB)"),
    "s3_write_request": (0.005 / 1000, "https://aws.amazon.com/s3/pricing/ (PUT, COPY, POST, LIST)"),
    "s3_read_request": (0.0004 / 1000, "https://aws.amazon.com/s3/pricing/ (GET)"),
    "egress_gb": (0.09, "https://aws.amazon.com/s3/pricing/ (data transfer out, first 10 TB)"),
    "sqs_request": (0.40 / 1e6, "https://aws.amazon.com/sqs/pricing/ (standard)"),
    "eventbridge_event": (1.00 / 1e6, "https://aws.amazon.com/eventbridge/pricing/ (custom events)"),
    "provider_megapixel": (0.035, "fal FLUX.1 [dev] with a LoRA via HF Inference Providers: $0.035/MP "
                                  "(https://fal.ai/models/fal-ai/flux-lora); the default config uses a LoRA"),
}

# ---- latencies on AWS (the handlers' own time is measured; moto's request time is replaced) -----------
LATENCY = {  # seconds per request, stated: DynamoDB's single-digit ms, S3/SQS tens of ms in-region
    "dynamodb": 0.006, "dynamodb.TransactWriteItems": 0.020, "dynamodb.TransactGetItems": 0.015,
    "s3": 0.030, "sqs": 0.010, "events": 0.020,
}
# Webhook endpoints (not ours): a healthy one answers in WEBHOOK_OK_SECONDS; a failing one is assumed
# to time out (WEBHOOK_TIMEOUT_SECONDS, config.webhook_timeout_seconds), the worst for the worker.
WEBHOOK_OK_SECONDS = 0.3
# How long DynamoDB holds an item between a transaction's prepare and commit: not published; the
# transaction's own latency in LATENCY is the stated figure (docs/scaling.md, "Transaction conflicts").
TRANSACTION_HOLD_SECONDS = 0.020
S3_BYTES_PER_SECOND = 80e6  # one connection's throughput from Lambda, stated
PROVIDER_SECONDS = 10.0  # FLUX.1-dev, 28 steps, 768×1024 on a hosted provider: stated, not measured here
# The provider's own rate limit is not published for Inference Providers; this is what the account
# is assumed to be allowed (requests in flight). The service's own cap is the generation worker's
# MaximumConcurrency (infra/resources.json).
PROVIDER_CONCURRENT_LIMIT = 10
GENERATED_IMAGE_BYTES = 1_000_000  # a photographic 768×1024 image as stored (the offline renderer's flat
# drawing, which the profile records, compresses to ~20 KB and is not representative)
THUMBNAIL_BYTES = 15_000  # a 300×300 JPEG of a photo, as docs/deploy.md assumes
ITEM_OVERHEAD_BYTES = 100  # DynamoDB bills 100 bytes of index overhead per item


@dataclass(frozen=True)
class Traffic:
    """Per active user per day, unless said otherwise. Stated assumptions (docs/scaling.md)."""
    active_share: float = 0.20  # daily active / registered
    peak_factor: float = 3.0  # peak-hour rate / day-average rate
    sessions: float = 2.0
    per_session: dict = field(default_factory=lambda: {
        "GET /projects": 1.0, "GET /projects/{id}": 1.0, "GET /projects/{id}/avatars": 2.0,
        "GET /avatars/{id}": 2.0, "GET /stats": 1.0, "GET /presets": 1.0, "GET /persona-examples": 0.2,
        "GET /avatars/{id}/usage-history": 0.3, "GET /projects/{id}/generations": 0.5})
    uploads: float = 1.0
    upload_polls: float = 2.0  # GET /avatars/{id} until ready
    generations: float = 1.0
    preset_share: float = 0.5  # of generations, started from a preset
    generation_polls: float = 6.0  # GET /generations/{id} until completed
    usage_events: float = 30.0
    usage_http_share: float = 0.1  # the rest arrives on the usage-events queue
    user_skew: float = 1.0  # Zipf exponent of activity over active users (the heaviest user's share)
    preset_skew: float = 1.0  # Zipf exponent of picks over presets
    avatar_concentration: float = 1.0  # share of the heaviest user's usage on their busiest avatar
    # Enabled webhooks subscribed to every event, per active user (integrators have one or two, most
    # users none); the profile records one.
    webhooks_per_user: float = 0.2
    # Deliveries whose endpoint is down for the whole retry schedule (every attempt fails, ~10 h).
    webhook_down_share: float = 0.01
    peak_hours: float = 4.0  # how long a day's peak lasts (the backlog model's busy window)


SCENARIOS = (10_000, 1_000_000, 10_000_000)
GENERATION_OPS = ("POST /projects/{id}/avatars/generate", "POST /presets/{id}/generate",
                  "generation_worker (per generation)", "GET /generations/{id}")
UNIQUE_MARKS = ("{eid}", "{gid}", "{ts}", "{idem}", "{file}", "{evt}")


def daily_counts(t: Traffic) -> dict[str, tuple[float, str]]:
    """Operations per active user per day, and what drives each (session, upload, generation, usage)."""
    counts: dict[str, tuple[float, str]] = {}

    def add(op: str, n: float, driver: str) -> None:
        counts[op] = (counts.get(op, (0.0, driver))[0] + n, driver)

    for op, n in t.per_session.items():
        add(op, t.sessions * n, "session")
    add("POST /projects/{id}/avatars/upload", t.uploads, "upload")
    add("browser POST to S3", t.uploads, "upload")
    add("upload_worker (per upload)", t.uploads, "upload")
    add("GET /avatars/{id}", t.uploads * t.upload_polls, "upload")
    add("POST /projects/{id}/avatars/generate", t.generations * (1 - t.preset_share), "generation")
    add("POST /presets/{id}/generate", t.generations * t.preset_share, "generation")
    add("generation_worker (per generation)", t.generations, "generation")
    add("GET /generations/{id}", t.generations * t.generation_polls, "generation")
    add("POST /avatars/{id}/usage", t.usage_events * t.usage_http_share, "usage")
    add("app SendMessageBatch (10 events)", t.usage_events * (1 - t.usage_http_share), "usage")
    add("usage_worker (per event)", t.usage_events * (1 - t.usage_http_share), "usage")
    return counts


def zipf_top_share(n: int, s: float) -> float:
    """The largest share under Zipf(s) over n: 1 / Σ k^-s (the exact sum up to 10^5, then its integral)."""
    n = max(1, int(n))
    head = min(n, 100_000)
    total = sum(k ** -s for k in range(1, head + 1))
    if n > head:
        total += math.log(n / head) if s == 1 else (n ** (1 - s) - head ** (1 - s)) / (1 - s)
    return 1 / total


# ---- what the profile says per operation -----------------------------------------------------------

def shards(pk: str) -> int:
    """How many partitions one recorded key template stands for: an avatar's history shards
    (`#H#{n}`, models.HISTORY_SHARDS, chosen by a hash of the event) and GSI3's shards (`SWEEP#{n}`,
    `FILES#{n}`, by a hash of the item's key) share their load evenly."""
    from chalicelib.aws.models import FILE_INTENT_SHARDS, HISTORY_SHARDS, SWEEP_SHARDS

    if pk.endswith("#H#{n}"):
        return HISTORY_SHARDS
    return {"SWEEP#{n}": SWEEP_SHARDS, "FILES#{n}": FILE_INTENT_SHARDS}.get(pk, 1)


def scope(pk: str, sk: str | None = None) -> str:
    """Whose traffic lands on one key: everyone's (global), one user's, one avatar's, one preset's, or
    one event's/job's (unique: never hot)."""
    text = pk + "|" + (sk or "")
    if any(mark in text for mark in UNIQUE_MARKS):
        return "unique"
    if "{aid}" in pk:
        return "avatar"
    if "{uid}" in pk:
        return "user"
    if "{preset}" in text or "{persona}" in text:
        return "preset"
    return "global"


def op_seconds(op: dict) -> float:
    """Handler time on AWS: the measured time outside AWS calls + stated request latencies + the provider
    + the webhook endpoint's answer."""
    own = op["own_seconds"] if "own_seconds" in op else \
        max(0.0, op["seconds"] - op["aws_seconds"] - op.get("lookup_seconds", 0.0))
    calls = sum(n * LATENCY.get(name, LATENCY.get(name.split(".")[0], 0.01)) for name, n in op["requests"].items())
    moved = sum(op["s3_put_bytes"].values()) / S3_BYTES_PER_SECOND
    http = op.get("http_out", 0) * (webhook_timeout() if op.get("http_failed") else WEBHOOK_OK_SECONDS)
    return (own + calls + moved + http) / op["per"] + op.get("provider_calls", 0) / op["per"] * PROVIDER_SECONDS


def webhook_timeout() -> float:
    from chalicelib.config import Settings

    return float(Settings().webhook_timeout_seconds)


def published(op: dict) -> float:
    """Events one operation puts on the bus (recorded PutEvents entries), per operation."""
    return sum((op.get("events_published") or {}).values()) / op["per"]


def derived_rates(ops: dict, base: dict[str, float], traffic: "Traffic") -> dict[str, float]:
    """The work that follows from `base` (operation -> rate or count): the stream worker on what each
    operation writes (recorded per operation), the webhook deliveries of what it publishes (scaled
    from the profile's one webhook to `webhooks_per_user`; a delivery to an endpoint that is down
    fails every attempt of the retry schedule), and the sweeper's per-file check of each file intent."""
    from chalicelib.config import Settings

    out = dict(base)
    delivered = sum(rate * published(ops[f"stream_worker ({op})"]) for op, rate in base.items()
                    if f"stream_worker ({op})" in ops)
    delivered *= traffic.webhooks_per_user
    attempts = 1 + len(Settings().webhook_retry_delays)
    if "webhook_worker (per delivery)" in ops:
        out["webhook_worker (per delivery)"] = delivered * (1 - traffic.webhook_down_share)
        out["webhook_worker (per failed attempt)"] = delivered * traffic.webhook_down_share * attempts
    files = sum(rate * sum(1 for t in ops[op]["touches"] if t["kind"] == "write" and t["index"] is None
                           and t["pk"].startswith("FILE#") and t.get("created")) / ops[op]["per"]
                for op, rate in base.items() if op in ops)
    if "sweeper: file intents (per file)" in ops:
        out["sweeper: file intents (per file)"] = files
    for op in list(out):
        stream = f"stream_worker ({op})"
        if stream in ops and stream not in out:
            out[stream] = out[op]
    return out


def units(op: dict, kind: str) -> float:
    return sum(t["units"] for t in op["touches"] if t["kind"] == kind) / op["per"]


def infra_functions(path: Path = ROOT / "infra" / "resources.json") -> dict[str, dict]:
    """Memory and event-source MaximumConcurrency per function, from the template AWS deploys."""
    names = {"APIHandler": "api_handler", "JwtAuth": "jwt_auth", "UploadWorker": "upload_worker",
             "UsageWorker": "usage_worker", "GenerationWorker": "generation_worker",
             "GenerationDlqWorker": "generation_dlq_worker", "CleanupWorker": "cleanup_worker",
             "StreamWorker": "stream_worker", "WebhookWorker": "webhook_worker", "Sweeper": "sweeper"}
    resources = json.loads(path.read_text())["Resources"]
    out = {}
    for logical, name in names.items():
        props = resources.get(logical, {}).get("Properties", {})
        cap = None
        for source in (props.get("Events") or {}).values():
            cap = (source.get("Properties", {}).get("ScalingConfig") or {}).get("MaximumConcurrency", cap)
        out[name] = {"memory_mb": props.get("MemorySize", 128), "max_concurrency": cap}
    return out


# ---- the model ---------------------------------------------------------------------------------------

@dataclass
class Result:
    users: int
    rates: dict  # op -> peak ops/s
    hot_partitions: list  # (load ratio, index, pk, read u/s, write u/s, scope)
    hot_items: list
    table_units: dict  # read/write units per second at peak
    concurrency: dict  # function -> {"needed", "cap", "per_message_s"}
    queues: dict  # queue -> messages/s at peak
    provider_rps: float
    storage: dict  # bytes per day: s3, dynamodb
    monthly: dict  # component -> $
    limits: list  # (ratio, what, load, limit)


class Model:
    def __init__(self, profile: dict, traffic: Traffic = Traffic(), functions: dict | None = None,
                 settings: Any = None, gallery_cache: bool = True) -> None:
        from chalicelib.config import Settings
        from chalicelib.presets.service import GALLERY_TTL_SECONDS

        self.profile, self.traffic = profile, traffic
        self.ops = profile["ops"]
        self.functions = functions if functions is not None else infra_functions()
        self.settings = settings or Settings()
        self.ttl = GALLERY_TTL_SECONDS
        self.gallery_cache = gallery_cache  # False: every gallery load reads the partition (before the cache)

    def settings_cap(self) -> int:
        """The generation worker's MaximumConcurrency as deployed by default (infra/resources.json)."""
        return int(self.functions.get("generation_worker", {}).get("max_concurrency") or 2)

    # -- rates
    def rates(self, users: int, *, peak: bool = True) -> dict[str, float]:
        t = self.traffic
        active = users * t.active_share
        factor = t.peak_factor if peak else 1.0
        rates = {op: active * n / DAY * factor for op, (n, _driver) in daily_counts(t).items()}
        rates = derived_rates(self.ops, rates, t)
        if "sweeper: overdue index (per run)" in self.ops:
            from chalicelib.config import SWEEP_MINUTES

            rates["sweeper: overdue index (per run)"] = 1 / (SWEEP_MINUTES * 60)
        # The gallery is read from DynamoDB once per API container per TTL (chalicelib/presets/service.py):
        # containers ≈ the API function's concurrency.
        api = self._concurrency_of("api_handler", rates)
        containers_per_second = api / self.ttl if self.gallery_cache else math.inf
        rates["gallery cache refresh"] = min(rates.get("GET /presets", 0.0), containers_per_second)
        rates["persona examples cache refresh"] = min(rates.get("GET /persona-examples", 0.0), containers_per_second)
        return rates

    def _concurrency_of(self, function: str, rates: dict) -> float:
        return sum(rate * op_seconds(self.ops[op]) for op, rate in rates.items()
                   if op in self.ops and self.ops[op]["function"] == function)

    def top_user_rates(self, users: int, rates: dict) -> dict[str, float]:
        """The heaviest user's share of each operation; generations capped by the per-user active-job
        limit (the daily quota bounds the day, the active cap the instant)."""
        active = max(1, int(users * self.traffic.active_share))
        share = zipf_top_share(active, self.traffic.user_skew)
        gen_seconds = op_seconds(self.ops["generation_worker (per generation)"])
        cap = self.settings.generation_active_limit / gen_seconds
        top = {}
        for op, rate in rates.items():
            mine = rate * share
            if op in GENERATION_OPS:
                polls = self.traffic.generation_polls if op == "GET /generations/{id}" else 1.0
                mine = min(mine, cap * polls)
            top[op] = mine
        return top

    def key_loads(self, users: int, rates: dict) -> tuple[dict, dict]:
        """Read and write units per second on the busiest instance of every partition and item."""
        top = self.top_user_rates(users, rates)
        preset_share = zipf_top_share(self.profile["presets"], self.traffic.preset_skew)
        partitions: dict = {}
        items: dict = {}
        for op_name, rate in rates.items():
            op = self.ops.get(op_name)
            if op is None:
                continue
            for t in op["touches"]:
                per_op = t["units"] / op["per"] / shards(t["pk"])
                for key, where, kind_scope in (((t["index"], t["pk"]), partitions, scope(t["pk"])),
                                               ((t["index"], t["pk"], t["sk"]), items, scope(t["pk"], t["sk"]))):
                    if kind_scope == "unique":
                        continue
                    op_rate = {"global": rate, "user": top[op_name],
                               "avatar": top[op_name] * self.traffic.avatar_concentration,
                               "preset": rate * preset_share}[kind_scope]
                    entry = where.setdefault(key, {"read": 0.0, "write": 0.0, "scope": kind_scope})
                    entry[t["kind"]] += op_rate * per_op
        return partitions, items

    def run(self, users: int) -> Result:
        rates = self.rates(users)
        partitions, items = self.key_loads(users, rates)
        read_limit = LIMITS["partition_read_units"][0]
        write_limit = LIMITS["partition_write_units"][0]

        def ranked(loads: dict) -> list:
            rows = []
            for key, load in loads.items():
                ratio = max(load["read"] / read_limit, load["write"] / write_limit)
                rows.append((ratio, key[0], "/".join(k for k in key[1:] if k is not None), load["read"],
                             load["write"], load["scope"]))
            return sorted(rows, key=lambda r: -r[0])

        table = {kind: sum(rate * units(self.ops[op], kind) for op, rate in rates.items() if op in self.ops)
                 for kind in ("read", "write")}
        concurrency = {}
        for name, info in self.functions.items():
            handled = {op: rate for op, rate in rates.items() if op in self.ops and self.ops[op]["function"] == name}
            if not handled:
                continue
            needed = sum(rate * op_seconds(self.ops[op]) for op, rate in handled.items())
            concurrency[name] = {"needed": needed, "cap": info["max_concurrency"], "rate": sum(handled.values())}
        # The authorizer: one call per session (API Gateway caches its decision per token).
        sessions = users * self.traffic.active_share * self.traffic.sessions / DAY * self.traffic.peak_factor
        concurrency["jwt_auth"] = {"needed": sessions * LATENCY["dynamodb"], "cap": None, "rate": sessions}

        queues: dict = {}
        for op_name, rate in rates.items():
            op = self.ops.get(op_name)
            for entry, n in (op or {}).get("sqs", {}).items():
                action, queue = entry.split(" ", 1)
                if action.startswith("SendMessage"):
                    if op["function"] == "stream_worker" and queue.endswith("webhooks"):
                        n *= self.traffic.webhooks_per_user  # the profile's user has one webhook
                    queues[queue] = queues.get(queue, 0.0) + rate * n / op["per"]
        if "avatar-creator-uploads" not in queues:  # S3 → SQS notifications: one message per upload
            queues["avatar-creator-uploads (S3 events)"] = rates["upload_worker (per upload)"]
        provider = sum(rate * self.ops[op].get("provider_calls", 0) / self.ops[op]["per"]
                       for op, rate in rates.items() if op in self.ops)

        daily = self.rates(users, peak=False)
        storage = self.storage_per_day(daily)
        monthly = self.monthly_cost(users)
        api_rps = sum(rate for op, rate in rates.items() if op in self.ops and self.ops[op]["function"] == "api_handler"
                      and not op.endswith("cache refresh"))
        limits = [
            (api_rps / LIMITS["api_gateway_rps"][0], "API Gateway requests/s (account)", api_rps,
             LIMITS["api_gateway_rps"][0]),
            (table["read"] / LIMITS["table_read_units"][0], "DynamoDB table read units/s", table["read"],
             LIMITS["table_read_units"][0]),
            (table["write"] / LIMITS["table_write_units"][0], "DynamoDB table write units/s", table["write"],
             LIMITS["table_write_units"][0]),
        ]
        total_conc = sum(c["needed"] for c in concurrency.values())
        account = LIMITS["lambda_account_concurrency"][0]
        limits.append((total_conc / account, "Lambda concurrency (account, all functions)", total_conc, account))
        for name, c in concurrency.items():
            if c["cap"]:
                limits.append((c["needed"] / c["cap"], f"{name} MaximumConcurrency", c["needed"], c["cap"]))
        limits.append((provider * PROVIDER_SECONDS / PROVIDER_CONCURRENT_LIMIT, "provider requests in flight",
                       provider * PROVIDER_SECONDS, PROVIDER_CONCURRENT_LIMIT))
        if "sweeper: file intents (per file)" in self.ops:
            from chalicelib.config import SWEEP_MINUTES
            from chalicelib.avatars.file_intents import INTENTS_PER_SHARD
            from chalicelib.aws.models import FILE_INTENT_SHARDS

            # The sweeper checks at most 16 × 500 intents a run: the day's files must fit (a peak is
            # checked an hour later and spreads over the following runs, so the day's average counts).
            checked = FILE_INTENT_SHARDS * INTENTS_PER_SHARD / (SWEEP_MINUTES * 60)
            files = daily.get("sweeper: file intents (per file)", 0.0)
            limits.append((files / checked, "sweeper file-intent checks (16 × 500 per run)", files, checked))
        hot_p, hot_i = ranked(partitions), ranked(items)
        for label, rows in (("hottest partition", hot_p), ("hottest item", hot_i)):
            if rows:
                ratio, index, key = rows[0][:3]
                limits.append((ratio, f"{label} {key}" + (f" ({index})" if index else ""), ratio * 100, 100))
        return Result(users, rates, hot_p, hot_i, table, concurrency, queues, provider, storage, monthly,
                      sorted(limits, key=lambda r: -r[0]))

    # -- storage and money
    def storage_per_day(self, daily: dict) -> dict[str, float]:
        s3 = dynamodb = 0.0
        for op_name, rate in daily.items():
            op = self.ops.get(op_name)
            if op is None:
                continue
            for prefix, size in op["s3_put_bytes"].items():
                if prefix == "uploads/":
                    continue  # the original: deleted by the upload worker (lifecycle: a day at most)
                if prefix == "images/" and op.get("provider_calls"):
                    size = GENERATED_IMAGE_BYTES
                s3 += rate * DAY * size / op["per"]
            for t in op["touches"]:
                if t["kind"] == "write" and t.get("created"):
                    dynamodb += rate * DAY * (t["bytes"] + ITEM_OVERHEAD_BYTES) / op["per"]
        return {"s3": s3, "dynamodb": dynamodb}

    def op_cost(self, op_name: str) -> dict[str, float]:
        """Dollars per one operation, by component (storage excluded: it accrues per month)."""
        op = self.ops[op_name]
        per = op["per"]
        cost: dict[str, float] = {}
        function = op["function"]
        if function in self.functions:
            gb = self.functions[function]["memory_mb"] / 1024
            cost["Lambda"] = op_seconds(op) * gb * PRICES["lambda_gb_second"][0] + PRICES["lambda_request"][0]
        if function == "api_handler" and not op_name.endswith("cache refresh"):
            cost["API Gateway"] = PRICES["api_gateway_request"][0]
        cost["DynamoDB"] = (units(op, "read") * PRICES["dynamodb_read_unit"][0]
                            + units(op, "write") * PRICES["dynamodb_write_unit"][0])
        s3_writes = sum(n for name, n in op["requests"].items() if name in ("s3.PutObject",)) / per
        s3_reads = sum(n for name, n in op["requests"].items() if name == "s3.GetObject") / per
        thumbs = op.get("image_urls", 0) / per
        cost["S3"] = (s3_writes * PRICES["s3_write_request"][0] + (s3_reads + thumbs) * PRICES["s3_read_request"][0]
                      + thumbs * THUMBNAIL_BYTES / 1e9 * PRICES["egress_gb"][0])
        sqs = sum(n for name, n in op["requests"].items() if name.startswith("sqs.")) / per
        if function.endswith("_worker"):
            sqs += 2 / 10  # the event source's ReceiveMessage + DeleteMessageBatch, per batch of up to 10
        cost["SQS"] = sqs * PRICES["sqs_request"][0]
        # What the stream worker really put on the bus for this operation's writes (recorded): usage
        # counters, markers, intents and bookkeeping publish nothing.
        cost["EventBridge"] = published(op) * PRICES["eventbridge_event"][0]
        cost["Provider"] = (op.get("provider_calls", 0) / per * op.get("provider_megapixels", 0)
                            * PRICES["provider_megapixel"][0])
        return cost

    def monthly_cost(self, users: int) -> dict[str, float]:
        daily = self.rates(users, peak=False)
        totals: dict[str, float] = {}
        for op_name, rate in daily.items():
            if op_name not in self.ops:
                continue
            for component, dollars in self.op_cost(op_name).items():
                totals[component] = totals.get(component, 0.0) + rate * DAY * MONTH_DAYS * dollars
        sessions = users * self.traffic.active_share * self.traffic.sessions * MONTH_DAYS
        gb = self.functions["jwt_auth"]["memory_mb"] / 1024
        totals["Lambda"] += sessions * (PRICES["lambda_request"][0]
                                        + LATENCY["dynamodb"] * gb * PRICES["lambda_gb_second"][0])
        # Storage: the average stock over the first month (half of a month's growth), billed per GB-month.
        grow = self.storage_per_day(daily)
        totals["S3 storage"] = grow["s3"] * MONTH_DAYS / 2 / 1e9 * PRICES["s3_gb_month"][0]
        totals["DynamoDB storage"] = grow["dynamodb"] * MONTH_DAYS / 2 / 1e9 * PRICES["dynamodb_gb_month"][0]
        return totals

    def unit_costs(self) -> dict[str, dict[str, float]]:
        """Per 1,000 generations, per 1M API calls of the mix, per GB-month of avatars."""
        counts = daily_counts(self.traffic)
        per_gen: dict[str, float] = {}
        one = derived_rates(self.ops, {op: counts[op][0] / self.traffic.generations for op in GENERATION_OPS},
                            self.traffic)
        for op_name, n in one.items():
            for component, dollars in self.op_cost(op_name).items():
                per_gen[component] = per_gen.get(component, 0.0) + 1000 * n * dollars
        per_gen["S3 storage (first month of the image)"] = 1000 * GENERATED_IMAGE_BYTES / 1e9 * PRICES["s3_gb_month"][0]
        api_ops = {op: n for op, (n, _d) in counts.items()
                   if op in self.ops and self.ops[op]["function"] == "api_handler"}
        calls = sum(api_ops.values())
        per_api: dict[str, float] = {}
        for op_name, n in api_ops.items():
            for component, dollars in self.op_cost(op_name).items():
                if component in ("Provider", "SQS", "EventBridge"):
                    continue
                per_api[component] = per_api.get(component, 0.0) + 1e6 * n / calls * dollars
        per_gb = {"S3 Standard": PRICES["s3_gb_month"][0]}
        return {"per 1,000 generations": per_gen, "per 1M API calls (the session mix)": per_api,
                "per GB-month of avatars": per_gb}

    def breaking_point(self, limit_name: str, low: int = 1_000, high: int = 10**10, at: float = 1.0) -> int | None:
        """The smallest user count at which a limit's ratio reaches `at` (bisection; loads grow with users)."""
        def ratio(users: int) -> float:
            return next((r for r, what, *_ in self.run(users).limits if what.startswith(limit_name)), 0.0)

        if ratio(high) < at:
            return None
        if ratio(low) >= at:
            return low
        while high / low > 1.02:
            mid = int(math.sqrt(low * high))
            low, high = (low, mid) if ratio(mid) >= at else (mid, high)
        return high


# ---- item 6 of issue 32: the stream, webhooks, quotas, on-demand scaling, conflicts, backlog, provider ---------

def stream_load(model: "Model", users: int) -> dict:
    """The stream worker at peak: records it is handed, the part that can publish (project, avatar and
    generation items), events and PutEvents requests, its busy time against one batch per shard."""
    rates = model.rates(users)
    out = {"records": 0.0, "resource_records": 0.0, "events": 0.0, "put_events": 0.0, "busy": 0.0,
           "webhook_messages": 0.0}
    for name, rate in rates.items():
        op = model.ops.get(name)
        if not op:
            continue
        stream = op.get("stream") or {}
        out["records"] += rate * stream.get("records", 0) / op["per"]
        out["resource_records"] += rate * stream.get("resource_records", 0) / op["per"]
        if op["function"] == "stream_worker":
            out["events"] += rate * published(op)
            out["put_events"] += rate * op["requests"].get("events.PutEvents", 0) / op["per"]
            out["busy"] += rate * op_seconds(op)
    table = model.run(users).table_units
    out["shards"] = max(1, math.ceil(table["write"] / LIMITS["partition_write_units"][0]),
                        math.ceil(table["read"] / LIMITS["partition_read_units"][0]))
    return out


def s3_prefix_rates(model: "Model", users: int) -> dict[str, dict[str, float]]:
    """PUTs and GETs per second per top-level prefix at peak (browsers fetch each thumbnail URL once)."""
    rates = model.rates(users)
    out: dict[str, dict[str, float]] = {}
    for name, rate in rates.items():
        op = model.ops.get(name)
        if not op:
            continue
        for kind, counts in (("put", op.get("s3_puts") or {}), ("get", op.get("s3_gets") or {})):
            for prefix, n in counts.items():
                out.setdefault(prefix, {"put": 0.0, "get": 0.0})[kind] += rate * n / op["per"]
        if op.get("image_urls"):
            out.setdefault("thumbs/", {"put": 0.0, "get": 0.0})["get"] += rate * op["image_urls"] / op["per"]
    return out


def transaction_items(model: "Model", users: int, *, mixed_batches: bool = False) -> list[dict]:
    """The heaviest user's items that transactions write, with the write rate on each (transactional
    and plain), the chance a transaction on it meets another write within TRANSACTION_HOLD_SECONDS
    (Poisson: 1 - exp(-2·hold·writes/s)), and the operations involved.

    mixed_batches: the usage worker's batches mix users, so the heaviest user's events are spread over
    more batches (and transactions) than the recording's batch of one user's 10 events: each batch of
    10 holds at least one of theirs with probability 1 - (1 - share)^10."""
    rates = model.rates(users)
    top = model.top_user_rates(users, rates)
    if mixed_batches and "usage_worker (per event)" in rates:
        everyone = rates["usage_worker (per event)"]
        share = top["usage_worker (per event)"] / everyone if everyone else 0.0
        batches = everyone / 10 * (1 - (1 - share) ** 10)
        top = {**top, "usage_worker (per event)": batches * 10}  # one recorded batch per batch they appear in
    items: dict = {}
    for name, rate in top.items():
        op = model.ops.get(name)
        if not op or not rate:
            continue
        seen = set()
        for t in op["touches"]:
            if t["kind"] != "write" or t["index"] is not None or scope(t["pk"], t["sk"]) not in ("user", "avatar"):
                continue
            key = (t["pk"], t["sk"])
            if (t.get("request"), key) in seen:
                continue
            seen.add((t.get("request"), key))
            entry = items.setdefault(key, {"tx": 0.0, "plain": 0.0, "ops": set()})
            entry["tx" if t["transactional"] else "plain"] += rate / op["per"]
            entry["ops"].add(name)
    out = []
    for (pk, sk), e in items.items():
        writes = e["tx"] + e["plain"]
        p = 1 - math.exp(-2 * TRANSACTION_HOLD_SECONDS * writes)
        out.append({"item": f"{pk}/{sk}", "tx_per_s": e["tx"], "writes_per_s": writes, "p_conflict": p,
                    "ops": sorted(e["ops"])})
    return sorted(out, key=lambda r: -r["p_conflict"])


def daily_shape(peak_factor: float, steps: int = 1440) -> list[float]:
    """Demand over a day, mean 1 and maximum `peak_factor`: (1 + cos)^k around the peak hour."""
    def curve(k: float) -> list[float]:
        raw = [(1 + math.cos(2 * math.pi * (i / steps - 0.5))) ** k for i in range(steps)]
        mean = sum(raw) / steps
        return [r / mean for r in raw]

    low, high = 0.0, 20.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if max(curve(mid)) < peak_factor else (low, mid)
    return curve(high)


def backlog(model: "Model", users: int, jobs_in_flight: float, *, days: int = 3) -> dict:
    """The generation queue over a day when demand can exceed what the jobs in flight complete.

    A fluid model in minute steps over `days` days (the last one reported): jobs arrive with the daily
    curve (mean = the day's average, maximum = peak_factor ×); the worker completes jobs_in_flight ÷
    (a job's duration) per second, oldest first (SQS standard queues are roughly, not strictly,
    first in first out); a job that has waited GENERATION_MAX_QUEUE_SECONDS is failed `queue_timeout`
    by the sweeper and its images are given back (jobs.expire). Runs that die are not modelled: the
    3,600 s deadline from the first claim only ends jobs whose runs keep failing."""
    settings = model.settings
    average = model.rates(users, peak=False)["generation_worker (per generation)"]
    seconds = op_seconds(model.ops["generation_worker (per generation)"])
    capacity = jobs_in_flight / seconds
    shape = daily_shape(model.traffic.peak_factor)
    step = DAY / len(shape)
    queue: list[list[float]] = []  # [arrived at, jobs]
    oldest = timed_out = arrived = served = 0.0
    longest = 0.0
    for day in range(days):
        last = day == days - 1
        for i, factor in enumerate(shape):
            now = (day * len(shape) + i) * step
            queue.append([now, average * factor * step])
            while queue and now - queue[0][0] > settings.generation_max_queue_seconds:
                expired = queue.pop(0)[1]
                if last:
                    timed_out += expired
            budget = capacity * step
            while queue and budget > 0:
                take = min(budget, queue[0][1])
                queue[0][1] -= take
                budget -= take
                if last:
                    served += take
                if queue[0][1] <= 1e-12:
                    queue.pop(0)
            if last:
                arrived += average * factor * step
                oldest = now - queue[0][0] if queue else 0.0
                longest = max(longest, oldest)
    return {"capacity": capacity, "peak_demand": average * max(shape), "average_demand": average,
            "max_queue_age": longest, "timed_out_per_day": timed_out, "arrived_per_day": arrived,
            "timed_out_share": timed_out / arrived if arrived else 0.0,
            "backlog_end_of_day": sum(j for _t, j in queue)}


# A FLUX.1-dev replica (one request at a time; 28 steps, 768×1024): a plain H100 with diffusers
# takes ~7 s at 1024² (docs/scaling.md), so ~0.14 images/s per replica. Stated, not measured here.
REPLICA_SECONDS_PER_IMAGE = 7.0
# The share of a dedicated endpoint's replica-hours that are busy over a day when it autoscales
# on the daily curve (min replicas at night, max at the peak): stated.
REPLICA_UTILISATION = 0.5


def provider_plan(model: "Model", users: int) -> dict:
    """What to buy: requests in flight at peak, the provider rate limit that covers them with the 20%
    headroom GenerationMaxConcurrency keeps (docs/deploy.md), or dedicated replicas."""
    rates = model.rates(users)
    peak = rates["generation_worker (per generation)"] * model.ops["generation_worker (per generation)"].get(
        "provider_calls", 1) / model.ops["generation_worker (per generation)"]["per"]
    average = model.rates(users, peak=False)["generation_worker (per generation)"]
    in_flight = peak * PROVIDER_SECONDS
    cap = max(2, math.ceil(in_flight * 1.15))  # 15% above the peak's need, so a queue drains after it
    allowed = math.ceil(cap / 0.8)  # docs/deploy.md: GenerationMaxConcurrency = floor(0.8 × allowance)
    replicas_peak = peak * REPLICA_SECONDS_PER_IMAGE
    megapixels = model.ops["generation_worker (per generation)"].get("provider_megapixels", 0.79)
    per_image = megapixels * PRICES["provider_megapixel"][0]
    return {"peak_images_per_s": peak, "average_images_per_s": average, "in_flight": in_flight,
            "provider_allowance": allowed, "requests_per_minute": allowed * 60 / PROVIDER_SECONDS,
            "generation_max_concurrency": cap,
            "replicas_peak": math.ceil(replicas_peak), "replicas_average": average * REPLICA_SECONDS_PER_IMAGE,
            # a replica-hour is cheaper than the per-image price below this hourly rate
            "break_even_per_replica_hour": 3600 / REPLICA_SECONDS_PER_IMAGE * REPLICA_UTILISATION * per_image}


def quota_plan(model: "Model", users: int) -> list[dict]:
    """Each AWS quota the service leans on: load at peak, the default, and what to ask for (2× the peak
    where the load passes half the default, so a day twice as busy still fits)."""
    r = model.run(users)
    stream = stream_load(model, users)
    s3 = s3_prefix_rates(model, users)
    lambda_total = sum(c["needed"] for c in r.concurrency.values())
    api = next(load for _ratio, what, load, _lim in r.limits if what.startswith("API Gateway"))
    rows = [
        ("Lambda concurrent executions (account)", lambda_total, LIMITS["lambda_account_concurrency"][0]),
        ("API Gateway requests/s (account, region)", api, LIMITS["api_gateway_rps"][0]),
        ("DynamoDB table write units/s (on-demand table maximum)", r.table_units["write"],
         LIMITS["table_write_units"][0]),
        ("DynamoDB table read units/s (on-demand table maximum)", r.table_units["read"],
         LIMITS["table_read_units"][0]),
        ("EventBridge PutEvents requests/s", stream["put_events"], LIMITS["eventbridge_put_events_rps"][0]),
    ]
    for prefix, load in sorted(s3.items()):
        rows.append((f"S3 PUT/s on `{prefix}` (before S3 splits the prefix)", load["put"],
                     LIMITS["s3_writes_per_prefix"][0]))
        rows.append((f"S3 GET/s on `{prefix}` (before S3 splits the prefix)", load["get"],
                     LIMITS["s3_reads_per_prefix"][0]))
    out = []
    for what, load, default in rows:
        ask = None if load < default / 2 else f"{math.ceil(2 * load / 1000) * 1000:,}"
        if ask and what.startswith("S3"):  # no quota: S3 splits a busy prefix by itself (keys carry the user id)
            ask = "nothing to ask: S3 partitions the prefix as the load grows (503 SlowDown, retried, meanwhile)"
        out.append({"quota": what, "load": load, "default": default, "ratio": load / default, "ask": ask})
    return out


def on_demand_plan(model: "Model", users: int) -> dict:
    """A new on-demand table serves 4,000 write / 12,000 read units at once; after that up to twice its
    previous peak (30 days) at once. Daily swings (peak = 3× average) stay within twice yesterday's
    peak; a launch, a migration or a backfill needs warm throughput set beforehand."""
    table = model.run(users).table_units
    write0, read0 = LIMITS["on_demand_initial_write_units"][0], LIMITS["on_demand_initial_read_units"][0]
    need_w, need_r = table["write"] * 1.5, table["read"] * 1.5
    return {"peak_write": table["write"], "peak_read": table["read"],
            "new_table_ok": table["write"] <= write0 and table["read"] <= read0,
            "warm_write": max(write0, math.ceil(need_w / 1000) * 1000),
            "warm_read": max(read0, math.ceil(need_r / 1000) * 1000)}


# ---- per-user / per-avatar ceilings, and the proposed aggregation ------------------------------------------

USAGE_OPS = ("usage_worker (per event)", "POST /avatars/{id}/usage")
COUNTERS = ("META", "APP#{app}", "STATS", "APPUSE#{app}", "A#{aid}", "{day}#{app}")


def usage_event_units(profile: dict, *, batch: int = 1) -> dict[tuple, float]:
    """Write units one usage event puts on each non-unique partition ("P", index, pk) and item ("I", …).

    The recording already has the worker's per-batch aggregation (one ADD per counter item per batch);
    batch > 1 models a further aggregation of the counters over `batch` recorded batches."""
    op = profile["ops"]["usage_worker (per event)"]
    out: dict[tuple, float] = {}
    for t in op["touches"]:
        if t["kind"] != "write":
            continue
        per_event = t["units"] / op["per"] / (batch if t["sk"] in COUNTERS else 1) / shards(t["pk"])
        for key, sc in ((("P", t["index"], t["pk"]), scope(t["pk"])), (("I", t["index"], t["pk"], t["sk"]),
                                                                        scope(t["pk"], t["sk"]))):
            if sc != "unique":
                out[key] = out.get(key, 0.0) + per_event
    return out


def ceilings(profile: dict, *, batch: int = 1, share: float = 1.0) -> list[tuple[str, float, float]]:
    """(key, write units per event, events/s at which it reaches `share` of the 1,000-unit limit)."""
    limit = LIMITS["partition_write_units"][0] * share
    rows = [("/".join(k for k in key[2:] if k) + (f" ({key[1]})" if key[1] else ""), u, limit / u)
            for key, u in usage_event_units(profile, batch=batch).items()]
    return sorted(rows, key=lambda r: r[2])


# ---- report --------------------------------------------------------------------------------------------

def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.3g}" if n < 10 else f"{n:.0f}"


def money(x: float) -> str:
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}"


def report(model: Model, scenarios: tuple = SCENARIOS, top: int = 6) -> str:
    results = [model.run(u) for u in scenarios]
    heads = " | ".join(f"{human(u)} users" for u in scenarios)
    lines = [f"# Capacity model\n\nComputed {today()} by `make capacity` from the recorded profile "
             f"(bench/results/capacity-profile.json) and the assumptions in bench/capacity.py "
             f"(docs/scaling.md). Peak = {model.traffic.peak_factor}× the day's average; "
             f"{model.traffic.active_share:.0%} of users active per day.\n",
             "## Requests per second at peak, per route / handler\n", f"| operation | function | {heads} |",
             "|---|---|" + "---|" * len(scenarios)]
    for op in sorted(results[0].rates, key=lambda o: -results[0].rates[o]):
        fn = model.ops[op]["function"] if op in model.ops else "-"
        lines.append(f"| {op} | {fn} | " + " | ".join(human(r.rates[op]) for r in results) + " |")

    lines += ["\n## Hottest keys (load / limit; per partition and per item: 3,000 read, 1,000 write units/s)\n"]
    for r in results:
        lines += [f"### {human(r.users)} users\n",
                  "| what | index | key | reads u/s | writes u/s | scope | % of limit |", "|---|---|---|---|---|---|---|"]
        for label, rows in (("partition", r.hot_partitions), ("item", r.hot_items)):
            for ratio, index, key, rd, wr, sc in rows[:top]:
                lines.append(f"| {label} | {index or 'table'} | `{key}` | {rd:.1f} | {wr:.1f} | {sc} | {ratio:.1%} |")
        lines.append("")

    lines += ["## Table, functions, queues, provider, storage at peak\n", f"| | {heads} |",
              "|---|" + "---|" * len(scenarios)]
    for kind in ("read", "write"):
        lines.append(f"| DynamoDB {kind} units/s (table) | " + " | ".join(human(r.table_units[kind]) for r in results)
                     + " |")
    for name in results[0].concurrency:
        cap = results[0].concurrency[name]["cap"]
        lines.append(f"| Lambda concurrency {name}" + (f" (cap {cap})" if cap else "") + " | "
                     + " | ".join(f"{r.concurrency[name]['needed']:.2f}" for r in results) + " |")
    for queue in results[0].queues:
        lines.append(f"| SQS messages/s {queue} | " + " | ".join(human(r.queues[queue]) for r in results) + " |")
    lines.append("| provider calls/s | " + " | ".join(f"{r.provider_rps:.3g}" for r in results) + " |")
    lines.append("| S3 growth GB/day | " + " | ".join(f"{r.storage['s3'] / 1e9:.3g}" for r in results) + " |")
    lines.append("| DynamoDB growth GB/day | " + " | ".join(f"{r.storage['dynamodb'] / 1e9:.3g}" for r in results)
                 + " |")

    lines += ["\n## Monthly cost (30 days at the day's average; storage: the first month's stock)\n",
              f"| component | {heads} |", "|---|" + "---|" * len(scenarios)]
    components = sorted({c for r in results for c in r.monthly}, key=lambda c: -results[-1].monthly.get(c, 0))
    for c in components:
        lines.append(f"| {c} | " + " | ".join(money(r.monthly.get(c, 0)) for r in results) + " |")
    lines.append("| **total** | " + " | ".join(f"**{money(sum(r.monthly.values()))}**" for r in results) + " |")

    lines += ["\n## Unit costs\n"]
    for unit, parts in model.unit_costs().items():
        detail = ", ".join(f"{k} {money(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v > 0)
        lines.append(f"- **{unit}: {money(sum(parts.values()))}** ({detail})")

    lines += ["\n## Limits, most loaded first (load / limit)\n", f"| limit | {heads} |",
              "|---|" + "---|" * len(scenarios)]
    names = [what for _ratio, what, *_ in results[-1].limits]
    for what in names:
        cells = []
        for r in results:
            hit = next((ratio for ratio, w, *_ in r.limits if w == what), None)
            cells.append("-" if hit is None else (f"**{hit:.0%}**" if hit >= 1 else f"{hit:.0%}"))
        lines.append(f"| {what} | " + " | ".join(cells) + " |")

    lines += ["\n## Usage events per second one user can send before a key of theirs is at 50% / 100%\n",
              "Write units per event on each key the heaviest user's events share (recorded), and the rate at "
              "which the key reaches half of / all of the 1,000 write units/s. The queue path is recorded "
              "as the code runs it since issue 32: a batch of 10 events of one avatar updates each counter "
              "once (usage.record_group).\n",
              "| key | units/event | events/s at 50% | at 100% |",
              "|---|---|---|---|"]
    for key, u, at in ceilings(model.profile, share=0.5):
        lines.append(f"| `{key}` | {u:.2f} | {at:.0f} | {2 * at:.0f} |")
    before = Model(model.profile, model.traffic, model.functions, model.settings, gallery_cache=False)
    lines += ["\n## The gallery partition with and without the per-container cache (read units/s at peak)\n",
              f"| | {heads} |", "|---|" + "---|" * len(scenarios)]
    for label, m in (("every load reads `PRESET` (before)", before), ("cached per container (now)", model)):
        cells = []
        for u in scenarios:
            part = {key: rd for _r, _i, key, rd, _w, _s in m.run(u).hot_partitions}
            load = part.get("PRESET", 0)
            cells.append(f"{load:.1f} ({load / LIMITS['partition_read_units'][0]:.1%})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    lines += item6_report(model, scenarios)
    lines += ["\n## Where each limit is reached (users)\n"]
    for prefix in ("hottest partition", "hottest item"):
        point = model.breaking_point(prefix, at=0.5)
        lines.append(f"- {prefix} at 50%: " + (f"{human(point)} users" if point else "not below 10G users"))
    for prefix in ("generation_worker MaximumConcurrency", "usage_worker MaximumConcurrency",
                   "upload_worker MaximumConcurrency", "webhook_worker MaximumConcurrency",
                   "sweeper file-intent checks", "provider requests in flight", "hottest partition",
                   "hottest item", "Lambda concurrency", "API Gateway", "DynamoDB table write"):
        point = model.breaking_point(prefix)
        lines.append(f"- {prefix}: " + (f"{human(point)} users" if point else "not below 10G users"))
    return "\n".join(lines) + "\n"


def per_action_table(model: Model) -> list[str]:
    """What each recorded user action sets off beyond its own calls (all recorded)."""
    lines = ["| operation | stream records | of them project/avatar/generation items | events on the bus | "
             "GSI3 writes (units) | SQS messages sent | webhook POSTs |", "|---|---|---|---|---|---|---|"]
    for name, op in model.ops.items():
        if op["function"] == "stream_worker":
            continue
        per = op["per"]
        stream = op.get("stream") or {}
        worker = model.ops.get(f"stream_worker ({name})") or {}
        gsi3 = sum(t["units"] for t in op["touches"] if t["index"] == "GSI3" and t["kind"] == "write") / per
        sent = sum(n for entry, n in op.get("sqs", {}).items() if entry.startswith("SendMessage")) / per
        sent_by_stream = sum(n for entry, n in worker.get("sqs", {}).items() if entry.startswith("SendMessage")) / per
        events = ", ".join(f"{k} {v / per:g}" for k, v in sorted((worker.get("events_published") or {}).items()))
        if not (stream.get("records") or gsi3 or sent or op.get("http_out")):
            continue
        lines.append(f"| {name} | {stream.get('records', 0) / per:.3g} | {stream.get('resource_records', 0) / per:.3g} | "
                     f"{events or '0'} | {gsi3:.3g} | {sent:.3g}" + (f" (+{sent_by_stream:g} webhook)" if sent_by_stream else "")
                     + f" | {op.get('http_out', 0) / per:g} |")
    return lines


def item6_report(model: Model, scenarios: tuple) -> list[str]:
    heads = " | ".join(f"{human(u)} users" for u in scenarios)
    sep = "|---|" + "---|" * len(scenarios)
    lines = ["\n## What each operation sets off: stream records, events, GSI3, messages, HTTP out (recorded)\n",
             "Per operation (per event for the usage worker). The stream worker was run on exactly the records "
             "each operation wrote; 'events on the bus' are the PutEvents entries it made; the user has one "
             "webhook subscribed to every event, so each event is one webhook message (the model scales them "
             f"by {model.traffic.webhooks_per_user} webhooks per active user).\n"]
    lines += per_action_table(model)
    job = model.ops.get("generation_worker (job of 4 images)")
    if job:
        budget = job.get("budget") or {}
        writes = [t for t in job["touches"] if t["kind"] == "write" and t["index"] is None]
        gen_writes = sum(1 for t in writes if "#G#" in t["pk"])
        lines += ["\n## A job of 4 images under the production time budget (recorded)\n",
                  f"Function timeout {budget.get('timeout', 0):g} s, {budget.get('per_image_needed', 0):g} s needed "
                  f"before each image (provider timeout + classifier timeout + saving), the provider answering in "
                  f"{budget.get('provider_seconds', 0):g} s: **{job.get('runs')} runs**, "
                  f"**{job['sqs'].get('SendMessage avatar-creator-generations', 0)} hand-on message(s)**, "
                  f"{job['requests'].get('dynamodb.GetItem', 0)} reads of the job, {gen_writes} writes of the job item "
                  f"(claim = lease, one per image, summary, hand-on, settle; no heartbeat: nothing extends a lease), "
                  f"{sum(t['units'] for t in job['touches'] if t['kind'] == 'write'):.0f} write units in all. "
                  "A one-image job: 1 run, no hand-on."]
    results = {u: model.run(u) for u in scenarios}
    streams = {u: stream_load(model, u) for u in scenarios}
    lines += ["\n## Events out at peak: the stream worker, EventBridge, webhook delivery\n", f"| | {heads} |", sep]
    rows = [("stream records/s (every item write)", lambda u: human(streams[u]["records"])),
            ("of them on project/avatar/generation items (an event source filter would keep only these)",
             lambda u: f"{human(streams[u]['resource_records'])} ({streams[u]['resource_records'] / max(1e-9, streams[u]['records']):.0%})"),
            ("events published/s", lambda u: f"{streams[u]['events']:.3g}"),
            ("EventBridge PutEvents requests/s (quota 10,000)",
             lambda u: f"{streams[u]['put_events']:.3g} ({streams[u]['put_events'] / LIMITS['eventbridge_put_events_rps'][0]:.1%})"),
            ("stream worker busy (batches in flight) / shards (≈ partitions by peak units)",
             lambda u: f"{streams[u]['busy']:.2f} / {streams[u]['shards']}"),
            ("webhook deliveries/s (+ failed attempts/s)",
             lambda u: f"{results[u].rates.get('webhook_worker (per delivery)', 0):.3g} "
                       f"(+{results[u].rates.get('webhook_worker (per failed attempt)', 0):.3g})"),
            ("webhook worker concurrency (cap WEBHOOK_MAX_CONCURRENCY)",
             lambda u: f"{results[u].concurrency.get('webhook_worker', {}).get('needed', 0):.2f}"
                       f" / {results[u].concurrency.get('webhook_worker', {}).get('cap')}")]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(u) for u in scenarios) + " |")

    lines += ["\n## Generation backlog (demand above what the jobs in flight complete)\n",
              f"A fluid queue over a day (peak {model.traffic.peak_factor}× the average, bench/capacity.py `backlog`): "
              f"a job waiting {model.settings.generation_max_queue_seconds:,} s fails `queue_timeout` and its images are "
              f"given back; a job's run takes {op_seconds(model.ops['generation_worker (per generation)']):.1f} s.\n",
              "| users | jobs in flight | completes jobs/s | peak demand jobs/s | oldest job waits (max) | "
              "timed out and refunded per day |", "|---|---|---|---|---|---|"]
    for u in scenarios:
        plan = provider_plan(model, u)
        options = [(f"{model.settings_cap()} (default `GenerationMaxConcurrency`)", model.settings_cap()),
                   ("half of the peak's need", max(1.0, plan["in_flight"] / 2)),
                   (f"{plan['generation_max_concurrency']} (as bought below)", plan["generation_max_concurrency"])]
        for label, in_flight in options:
            b = backlog(model, u, in_flight)
            lines.append(f"| {human(u)} | {label} | {b['capacity']:.3g} | {b['peak_demand']:.3g} | "
                         f"{b['max_queue_age'] / 3600:.1f} h | {human(b['timed_out_per_day'])} "
                         f"({b['timed_out_share']:.0%}) |")

    lines += ["\n## On-demand scaling of the table\n",
              "A new on-demand table serves 4,000 write / 12,000 read units/s at once; later, up to twice its "
              "previous peak at once. The daily curve stays within that; a launch, a migration or a backfill does "
              "not: set warm throughput (table and GSIs) to 1.5× the peak beforehand.\n", f"| | {heads} |", sep]
    plans = {u: on_demand_plan(model, u) for u in scenarios}
    lines.append("| peak write / read units/s | " + " | ".join(
        f"{human(plans[u]['peak_write'])} / {human(plans[u]['peak_read'])}" for u in scenarios) + " |")
    lines.append("| a new table absorbs it at once | " + " | ".join(
        "yes" if plans[u]["new_table_ok"] else "**no**" for u in scenarios) + " |")
    lines.append("| warm throughput to set before a launch (write / read) | " + " | ".join(
        f"{human(plans[u]['warm_write'])} / {human(plans[u]['warm_read'])}" for u in scenarios) + " |")

    lines += ["\n## Transaction conflicts on the heaviest user's items\n",
              f"Writes/s on each item at peak, and the chance that a write meets another one on the same item within "
              f"{TRANSACTION_HOLD_SECONDS * 1000:.0f} ms (TransactionConflict): 1 − exp(−2 · hold · writes/s). "
              "'as recorded': the usage worker's batches hold one user's events; 'mixed': each batch of 10 mixes "
              "users, so their events are in more batches.\n",
              "| users | item | writes/s (recorded / mixed) | P(conflict) (recorded / mixed) | written by |",
              "|---|---|---|---|---|"]
    for u in scenarios:
        plain = {r["item"]: r for r in transaction_items(model, u)}
        mixed = {r["item"]: r for r in transaction_items(model, u, mixed_batches=True)}
        for item in sorted(mixed, key=lambda i: -mixed[i]["p_conflict"])[:4]:
            a, b = plain.get(item, {"writes_per_s": 0, "p_conflict": 0}), mixed[item]
            lines.append(f"| {human(u)} | `{item}` | {a['writes_per_s']:.3g} / {b['writes_per_s']:.3g} | "
                         f"{a['p_conflict']:.1%} / {b['p_conflict']:.1%} | {', '.join(b['ops'])} |")

    lines += ["\n## AWS quotas at peak (load / default; what to ask for where the load passes half of it)\n",
              "| users | quota | load | default | % | ask for |", "|---|---|---|---|---|---|"]
    for u in scenarios:
        for q in quota_plan(model, u):
            lines.append(f"| {human(u)} | {q['quota']} | {q['load']:.3g} | {q['default']:,} | {q['ratio']:.1%} | "
                         + (f"**{q['ask']}**" if q["ask"] else "-") + " |")

    lines += ["\n## The provider: what to buy\n", f"| | {heads} |", sep]
    plans_p = {u: provider_plan(model, u) for u in scenarios}
    for label, cell in (
            ("images/s at peak (average)", lambda p: f"{p['peak_images_per_s']:.3g} ({p['average_images_per_s']:.3g})"),
            (f"requests in flight at peak ({PROVIDER_SECONDS:g} s each)", lambda p: f"{p['in_flight']:.3g}"),
            ("provider allowance to buy (in flight, with 20% headroom)", lambda p: f"{math.ceil(p['provider_allowance'])}"),
            ("= requests/min", lambda p: f"{p['requests_per_minute']:.0f}"),
            ("`GenerationMaxConcurrency` to set", lambda p: f"{p['generation_max_concurrency']}"),
            (f"or dedicated replicas at the peak ({REPLICA_SECONDS_PER_IMAGE:g} s/image, 1 request each)",
             lambda p: f"{p['replicas_peak']} (average {p['replicas_average']:.2g})"),
            ("a replica-hour beats the per-image price below", lambda p: f"${p['break_even_per_replica_hour']:.2f}")):
        lines.append(f"| {label} | " + " | ".join(cell(plans_p[u]) for u in scenarios) + " |")

    lines += ["\n## First wall per size\n", "| users | first limit reached (load ≥ 100%) | first AWS limit "
              "(highest load / default) |", "|---|---|---|"]
    for u in scenarios:
        r = results[u]
        over = [row for row in r.limits if row[0] >= 1]
        aws = [row for row in r.limits if row[1].startswith(("Lambda", "API Gateway", "DynamoDB table", "hottest"))]
        aws += [(q["ratio"], q["quota"], q["load"], q["default"]) for q in quota_plan(model, u)
                if q["quota"].startswith(("EventBridge", "S3"))]
        first_aws = max(aws, key=lambda row: row[0])
        lines.append(f"| {human(u)} | " + (f"{over[0][1]} ({over[0][0]:.0%})" if over else "none") +
                     f" | {first_aws[1]} ({first_aws[0]:.0%}) |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", type=Path, help="a recorded profile (default: record one now)")
    args = parser.parse_args(argv)
    if args.profile:
        profile = json.loads(args.profile.read_text())
    else:
        from bench.capacity_profile import PROFILE_PATH, record_profile

        profile = record_profile()
        RESULTS.mkdir(parents=True, exist_ok=True)
        PROFILE_PATH.write_text(json.dumps(profile, indent=1, sort_keys=True) + "\n")
    text = report(Model(profile))
    write("capacity", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
