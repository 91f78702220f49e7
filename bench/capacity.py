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
    "s3": 0.030, "sqs": 0.010,
}
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


SCENARIOS = (10_000, 1_000_000, 10_000_000)
GENERATION_OPS = ("POST /projects/{id}/avatars/generate", "POST /presets/{id}/generate",
                  "generation_worker (per generation)", "GET /generations/{id}")
UNIQUE_MARKS = ("{eid}", "{gid}", "{ts}", "{idem}")


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
    (`#H#{n}`, models.HISTORY_SHARDS, chosen by a hash of the event) share its load evenly."""
    from chalicelib.aws.models import HISTORY_SHARDS

    return HISTORY_SHARDS if pk.endswith("#H#{n}") else 1


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
    """Handler time on AWS: the measured time outside AWS calls + stated request latencies + the provider."""
    own = op["own_seconds"] if "own_seconds" in op else \
        max(0.0, op["seconds"] - op["aws_seconds"] - op.get("lookup_seconds", 0.0))
    calls = sum(n * LATENCY.get(name, LATENCY[name.split(".")[0]]) for name, n in op["requests"].items())
    moved = sum(op["s3_put_bytes"].values()) / S3_BYTES_PER_SECOND
    return (own + calls + moved) / op["per"] + op.get("provider_calls", 0) / op["per"] * PROVIDER_SECONDS


def units(op: dict, kind: str) -> float:
    return sum(t["units"] for t in op["touches"] if t["kind"] == kind) / op["per"]


def infra_functions(path: Path = ROOT / "infra" / "resources.json") -> dict[str, dict]:
    """Memory and event-source MaximumConcurrency per function, from the template AWS deploys."""
    names = {"APIHandler": "api_handler", "JwtAuth": "jwt_auth", "UploadWorker": "upload_worker",
             "UsageWorker": "usage_worker", "GenerationWorker": "generation_worker",
             "GenerationDlqWorker": "generation_dlq_worker", "CleanupWorker": "cleanup_worker"}
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

    # -- rates
    def rates(self, users: int, *, peak: bool = True) -> dict[str, float]:
        t = self.traffic
        active = users * t.active_share
        factor = t.peak_factor if peak else 1.0
        rates = {op: active * n / DAY * factor for op, (n, _driver) in daily_counts(t).items()}
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
        # Issue 16 publishes entity changes from the table's stream: one event per write of a
        # project, avatar or generation item (their META / P# items).
        events = sum(1 for t in op["touches"] if t["kind"] == "write" and t["index"] is None
                     and (t["sk"] == "META" or (t["sk"] or "").startswith("P#"))) / per
        cost["EventBridge"] = events * PRICES["eventbridge_event"][0]
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
        for op_name in GENERATION_OPS:
            n = counts[op_name][0] / self.traffic.generations
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


# ---- per-user / per-avatar ceilings, and the proposed aggregation ------------------------------------------

USAGE_OPS = ("usage_worker (per event)", "POST /avatars/{id}/usage")
COUNTERS = ("META", "APP#{app}", "STATS", "APPUSE#{app}", "A#{aid}")


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

    lines += ["\n## Where each limit is reached (users)\n"]
    for prefix in ("hottest partition", "hottest item"):
        point = model.breaking_point(prefix, at=0.5)
        lines.append(f"- {prefix} at 50%: " + (f"{human(point)} users" if point else "not below 10G users"))
    for prefix in ("generation_worker MaximumConcurrency", "usage_worker MaximumConcurrency",
                   "upload_worker MaximumConcurrency", "provider requests in flight", "hottest partition",
                   "hottest item", "Lambda concurrency", "API Gateway", "DynamoDB table write"):
        point = model.breaking_point(prefix)
        lines.append(f"- {prefix}: " + (f"{human(point)} users" if point else "not below 10G users"))
    return "\n".join(lines) + "\n"


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
