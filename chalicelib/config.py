"""One typed settings object, read from the environment once.

Nothing here talks to AWS: secrets named by ARN are fetched lazily by
`chalicelib.aws.secrets` the first time they are needed.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Mapping

# Chalice reads `@app.on_sqs_message(queue_arn=...)` and `on_dynamodb_record(stream_arn=...)` at
# import/packaging time, before any queue or stream exists, so these are placeholders: the package
# replaces each with the resource's real ARN (infra/resources.json, the function's event source
# `Queue`/`Stream`; infra.check_package refuses a package that still has one). Every name is the
# stack's name plus a suffix, so stages deploy side by side; the local stack's stack is named
# "avatar-creator" (local/provision.py), so its queues have exactly these names.
_LOCAL = "arn:aws:sqs:us-east-1:000000000000:avatar-creator"
UPLOAD_QUEUE_ARN = f"{_LOCAL}-uploads"
GENERATION_QUEUE_ARN = f"{_LOCAL}-generations"
USAGE_EVENTS_QUEUE_ARN = f"{_LOCAL}-usage-events"
CLEANUP_QUEUE_ARN = f"{_LOCAL}-cleanup"
GENERATION_DLQ_ARN = f"{_LOCAL}-generations-dlq"
UPLOAD_DLQ_ARN = f"{_LOCAL}-uploads-dlq"
EXPORT_QUEUE_ARN = f"{_LOCAL}-exports"
# How often the sweeper runs on AWS (the local stack runs it every LOCAL_SWEEP_SECONDS).
SWEEP_MINUTES = 5
WEBHOOK_QUEUE_ARN = f"{_LOCAL}-webhooks"
# One message per (webhook, event), one per invocation: a slow endpoint holds only its own worker.
WEBHOOK_MAX_CONCURRENCY = 20
# The local stack reads the table's stream itself (local/streams.py).
TABLE_STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/avatar-creator/stream/from-infra"
# Lambda event source maximum concurrency of the generation worker (AWS minimum is 2; the original ran 2).
GENERATION_MAX_CONCURRENCY = 2

API_PREFIX = "/api/apps/avatar-creator"

MB = 1024 * 1024


def _floats(raw: str) -> tuple[float, ...]:
    return tuple(float(part) for part in raw.split(",") if part.strip())


# How an environment variable's text becomes a field's value, by the field's annotation.
_PARSE: dict[str, Any] = {
    "str": str, "str | None": str, "int": int, "float": float, "tuple[float, ...]": _floats,
    "bool": lambda raw: raw == "1",
}


# The only stages where WEBHOOK_ALLOW_PRIVATE is honoured: the local stack sets STAGE=local, the tests
# STAGE=test. Anything else (prod, dev, staging, a typo) keeps private webhook targets refused.
PRIVATE_WEBHOOK_STAGES = frozenset({"local", "test"})


class Settings:
    """Read-only settings: the annotated class attributes are the fields and their defaults — the only
    place a default is written. `Settings(**overrides)` sets some; `Settings.from_env()` reads each
    field from the environment variable of its name in capitals (`table_name` ← TABLE_NAME), an unset
    or empty variable leaving the default.

    A plain class rather than a frozen dataclass: generating a dataclass of this many fields costs
    every cold start ~4 ms, more than the rest of this module. No repr of the values either: it would
    print secrets into any log line that showed the object.
    """
    stage: str = "dev"
    region: str = "us-east-1"
    # Set for the embedded local stack and tests; None on AWS (the SDK's default endpoints).
    aws_endpoint_url: str | None = None

    table_name: str = "avatar-creator"
    upload_bucket: str = "avatar-creator-uploads"

    upload_queue_url: str | None = None
    generation_queue_url: str | None = None
    generation_dlq_url: str | None = None
    usage_events_queue_url: str | None = None
    # Where the usage consumer puts events it rejects (malformed, not the user's avatar) itself.
    usage_events_dlq_url: str | None = None
    cleanup_queue_url: str | None = None

    # JWT: the secret comes from JWT_SECRET locally, from Secrets Manager (JWT_SECRET_ARN) on AWS.
    jwt_secret: str | None = None
    jwt_secret_arn: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = 30
    # Separate key for opaque list cursors; derived from the JWT secret when unset.
    cursor_secret: str | None = None

    # Uploads
    upload_max_bytes: int = 10 * MB
    upload_url_expiry_seconds: int = 300
    upload_pending_ttl_seconds: int = 3600
    upload_batch_max: int = 20
    max_image_pixels: int = 40_000_000
    thumbnail_size: int = 300
    image_url_expiry_seconds: int = 900

    # Generation
    generation_provider: str = "auto"  # auto | hf | offline
    hf_token: str | None = None
    hf_token_arn: str | None = None
    flux_endpoint_url: str | None = None
    flux_model: str = "black-forest-labs/FLUX.1-dev"
    flux_lora: str | None = "XLabs-AI/flux-RealismLora"
    flux_provider: str | None = None
    flux_steps: int = 28
    flux_guidance: float = 3.5
    flux_timeout_seconds: float = 60.0
    generation_max_attempts: int = 3
    # The wait before attempt n+1 (one step per retry: with 3 attempts, two steps run).
    generation_backoff_seconds: tuple[float, ...] = (10.0, 100.0)
    # A run owns its job for this long, never renewed: longer than the worker's timeout (120 s), so a
    # crashed run's job is taken over only once that run is surely gone (tests tie the two).
    generation_lease_seconds: int = 180
    # A claimed job not ended this long after its first claim is failed `timed_out` by the sweeper. It
    # covers every attempt of a job whose runs die: each waits out the queue's visibility timeout
    # (720 s) and a backoff, plus one invocation per image handed on (a test checks the sum).
    generation_deadline_seconds: int = 3600
    # A job still waiting in the queue this long after it was queued fails `queue_timeout`.
    generation_max_queue_seconds: int = 6 * 3600
    # Usage events are deduplicated for this long (SQS keeps a message 14 days at most).
    usage_dedupe_days: int = 30
    # Avatars deleted from a project are removed in batches of this size per cleanup message.
    purge_batch_size: int = 25
    jwt_max_lifetime_seconds: int = 7 * 86400
    # Usage events one user may report over HTTP per second (docs/scaling.md: an avatar's partition
    # takes ~167 events/s; the queue path is bounded by the consumer's concurrency instead).
    usage_rate_per_second: int = 50
    generation_daily_limit: int = 50  # images per user per UTC day (a job of N images counts N)
    # Restyle (image-to-image): a FLUX image-editing model, or its own endpoint (else FLUX_ENDPOINT_URL).
    flux_image_model: str = "black-forest-labs/FLUX.1-Kontext-dev"
    flux_image_endpoint_url: str | None = None
    # The safety check on outputs (chalicelib/generation/safety.py).
    safety_model: str = "Falconsai/nsfw_image_detection"
    safety_endpoint_url: str | None = None
    safety_provider: str | None = None
    safety_threshold: float = 0.8
    safety_timeout_seconds: float = 30.0
    generation_active_limit: int = 5
    # Attribute suggestions on upload (chalicelib/avatars/suggestions.py): a zero-shot image classifier
    # (ATTRIBUTE_MODEL through Inference Providers with an HF token, or a dedicated ATTRIBUTE_ENDPOINT_URL).
    # Off unless turned on (ATTRIBUTE_SUGGESTIONS=on): the operator chooses the model and reads its card
    # first (CLIP's says deployed use is out of scope; docs/images.md). Runs only when the model can be
    # reached (an endpoint, or a token). Below the threshold nothing is suggested.
    attribute_suggestions: str = "off"  # on | off
    attribute_model: str = "openai/clip-vit-large-patch14"
    attribute_endpoint_url: str | None = None
    attribute_provider: str | None = None
    attribute_threshold: float = 0.6
    # One model call per avatar; well below the upload worker's 30 s (a batch hands on what does not fit).
    attribute_timeout_seconds: float = 8.0

    # API limits
    max_body_bytes: int = 64 * 1024
    default_page_size: int = 20
    max_page_size: int = 100

    # Events out (docs/events.md)
    event_bus_name: str | None = None
    webhook_queue_url: str | None = None
    webhook_dlq_url: str | None = None
    # http:// and loopback/private addresses for webhooks: honoured only on the stages in
    # PRIVATE_WEBHOOK_STAGES (the local stack's and the tests'), never anywhere else.
    webhook_allow_private: bool = False
    webhook_retry_delays: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    webhook_timeout_seconds: float = 10.0
    webhook_max_per_user: int = 10
    # Deliveries in flight at once per user, across all their webhooks (of 20 delivery workers):
    # no user can hold up another's deliveries.
    webhook_max_in_flight: int = 4
    # POST /webhooks/{id}/test: at most this many per webhook per minute, then 429 + Retry-After.
    webhook_test_per_minute: int = 5
    # The stream handler parks a record that failed this many times in STREAM_RECORDS_DLQ_URL (with
    # its reason) and goes on with the next: fewer than the event source's MaximumRetryAttempts (10).
    stream_max_attempts: int = 5
    stream_records_dlq_url: str | None = None
    webhook_disable_after_seconds: int = 5 * 86400
    webhook_delivery_ttl_days: int = 30

    # Exports (docs/exports.md): a zip streamed to S3 in parts, step by step.
    export_queue_url: str | None = None
    export_part_bytes: int = 8 * MB  # S3's minimum part is 5 MiB (all but the last)
    export_url_expiry_seconds: int = 300  # each GET /exports/{id} signs a new download URL
    export_retention_days: int = 7
    # A step owns its export this long, never renewed: longer than the export worker's timeout.
    export_lease_seconds: int = 360
    # An export that made no step for this long is sent again (twice), then failed, by the sweeper.
    export_stall_seconds: int = 900
    # A step hands the rest on when less time than this is left (one avatar's files and history).
    export_step_reserve_seconds: float = 30.0
    export_page_size: int = 25
    export_daily_limit: int = 20  # exports a user may start per UTC day (each reads every file of its avatars)

    log_level: str = "INFO"

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(type(self).__annotations__)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("settings are read-only")

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Settings stage={self.stage!r} region={self.region!r}>"

    @property
    def upload_deadline_seconds(self) -> int:
        """An upload not ready by then is rejected by the sweeper: the POST URL has expired long before."""
        return self.upload_url_expiry_seconds + 600

    @property
    def offline_generation(self) -> bool:
        """The offline provider runs only when chosen, or on `auto` with no provider configured
        outside production — never silently in prod."""
        if self.generation_provider == "offline":
            return True
        if self.generation_provider == "hf":
            return False
        no_provider = not (self.hf_token or self.hf_token_arn or self.flux_endpoint_url)
        return no_provider and self.stage != "prod"

    @staticmethod
    def worst_job_seconds(attempts: int, backoff: tuple[float, ...]) -> int:
        """How long a claimed job may rightly take: every attempt waits out the generation queue's
        visibility timeout and the largest backoff, and each of its images may be handed on once (one
        invocation each). The running deadline is never shorter (tests/unit/test_generation_timing_config.py)."""
        return int(attempts * (GENERATION_VISIBILITY_SECONDS + max(backoff or (0.0,)))
                   + MAX_IMAGES_PER_JOB * GENERATION_WORKER_TIMEOUT_SECONDS)

    @property
    def attribute_suggestions_on(self) -> bool:
        """Attribute suggestions run: turned on, and the model can be reached (an endpoint, or a token)."""
        return (self.attribute_suggestions.strip().lower() == "on"
                and bool(self.attribute_endpoint_url or self.hf_token or self.hf_token_arn))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        values: dict[str, Any] = {}
        for name, kind in cls.__annotations__.items():
            raw = environ.get(name.upper()) if name != "region" else None
            if raw:
                values[name] = _PARSE[kind](raw)
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if region:
            values["region"] = region
        # Limits that no environment may lift.
        if "jwt_leeway_seconds" in values:
            values["jwt_leeway_seconds"] = min(values["jwt_leeway_seconds"], 60)
        if "webhook_max_in_flight" in values:
            values["webhook_max_in_flight"] = max(1, values["webhook_max_in_flight"])
        if "stage" in values:  # "PROD", "prod ", " Prod" all mean prod
            values["stage"] = values["stage"].strip().lower() or cls.stage
        if "generation_deadline_seconds" not in values:
            # More attempts (the stack's GenerationMaxAttempts, up to 10) need a longer running deadline,
            # or the sweeper would fail a job its queue still means to retry.
            worst = cls.worst_job_seconds(values.get("generation_max_attempts", cls.generation_max_attempts),
                                          values.get("generation_backoff_seconds", cls.generation_backoff_seconds))
            values["generation_deadline_seconds"] = max(cls.generation_deadline_seconds, worst)
        if values.get("stage", cls.stage) not in PRIVATE_WEBHOOK_STAGES:
            values.pop("webhook_allow_private", None)  # private webhook targets: the local stack and tests only
        return cls(**values)


# The generation worker's timeout and its queue's visibility timeout, as infra/resources.json and
# .chalice/config.json set them (tests/unit/test_generation_timing_config.py checks they agree).
GENERATION_WORKER_TIMEOUT_SECONDS = 120
GENERATION_VISIBILITY_SECONDS = 720
MAX_IMAGES_PER_JOB = 4
# The export worker's timeout and its queue's visibility timeout (infra/resources.json, .chalice/config.json).
EXPORT_WORKER_TIMEOUT_SECONDS = 300
EXPORT_VISIBILITY_SECONDS = 1800


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
