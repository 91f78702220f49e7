"""Avatar Creator: wiring only. Routes live in chalicelib/api, event handlers in chalicelib/handlers."""
from chalice import Chalice, CORSConfig, Rate

from chalicelib.api.auth import auth_bp
from chalicelib.api.avatars import bp as avatars_bp
from chalicelib.api.compare import bp as compare_bp
from chalicelib.api.exports import bp as exports_bp
from chalicelib.api.generations import bp as generations_bp
from chalicelib.api.http import http_error_middleware
from chalicelib.api.presets import bp as presets_bp
from chalicelib.api.projects import bp as projects_bp
from chalicelib.api.suggestions import bp as suggestions_bp
from chalicelib.api.shares import bp as shares_bp
from chalicelib.api.system import bp as system_bp
from chalicelib.api.teams import bp as teams_bp
from chalicelib.api.usage import bp as usage_bp
from chalicelib.api.versions import bp as versions_bp
from chalicelib.api.webhooks import bp as webhooks_bp
from chalicelib.config import (
    API_PREFIX,
    CLEANUP_QUEUE_ARN,
    EXPORT_QUEUE_ARN,
    GENERATION_DLQ_ARN,
    GENERATION_MAX_CONCURRENCY,
    GENERATION_QUEUE_ARN,
    SWEEP_MINUTES,
    TABLE_STREAM_ARN,
    UPLOAD_DLQ_ARN,
    UPLOAD_QUEUE_ARN,
    USAGE_EVENTS_QUEUE_ARN,
    WEBHOOK_MAX_CONCURRENCY,
    WEBHOOK_QUEUE_ARN,
)

app = Chalice(app_name="avatar-creator")
# Bearer tokens (no cookies), so any origin may call the API; the page may be hosted on S3/CloudFront.
# A 429's Retry-After must be readable by that page too, and it may send an Idempotency-Key.
app.api.cors = CORSConfig(allow_origin="*", allow_headers=["Idempotency-Key"], expose_headers=["Retry-After"])
app.register_middleware(http_error_middleware, "http")

app.register_blueprint(auth_bp)
app.register_blueprint(system_bp, url_prefix=API_PREFIX)
app.register_blueprint(projects_bp, url_prefix=API_PREFIX)
app.register_blueprint(avatars_bp, url_prefix=API_PREFIX)
app.register_blueprint(suggestions_bp, url_prefix=API_PREFIX)
app.register_blueprint(generations_bp, url_prefix=API_PREFIX)
app.register_blueprint(usage_bp, url_prefix=API_PREFIX)
app.register_blueprint(presets_bp, url_prefix=API_PREFIX)
app.register_blueprint(webhooks_bp, url_prefix=API_PREFIX)
app.register_blueprint(shares_bp, url_prefix=API_PREFIX)
app.register_blueprint(exports_bp, url_prefix=API_PREFIX)
app.register_blueprint(compare_bp, url_prefix=API_PREFIX)
app.register_blueprint(versions_bp, url_prefix=API_PREFIX)
app.register_blueprint(teams_bp, url_prefix=API_PREFIX)


@app.on_sqs_message(queue_arn=CLEANUP_QUEUE_ARN, batch_size=1)
def cleanup_worker(event):
    from chalicelib.handlers.cleanup import handle

    return handle(event)


@app.on_sqs_message(queue_arn=UPLOAD_QUEUE_ARN, batch_size=5)
def upload_worker(event):
    from chalicelib.handlers.uploads import handle

    return handle(event)


@app.on_sqs_message(queue_arn=USAGE_EVENTS_QUEUE_ARN, batch_size=10)
def usage_worker(event):
    from chalicelib.handlers.usage import handle

    return handle(event)


# The provider bills per image and rate-limits: at most GENERATION_MAX_CONCURRENCY jobs at once.
@app.on_sqs_message(queue_arn=GENERATION_QUEUE_ARN, batch_size=1, maximum_concurrency=GENERATION_MAX_CONCURRENCY)
def generation_worker(event):
    from chalicelib.handlers.generation import handle

    return handle(event)


@app.on_sqs_message(queue_arn=GENERATION_DLQ_ARN, batch_size=10)
def generation_dlq_worker(event):
    from chalicelib.handlers.generation import handle_dead_letters

    return handle_dead_letters(event)


@app.on_sqs_message(queue_arn=UPLOAD_DLQ_ARN, batch_size=10)
def upload_dlq_worker(event):
    from chalicelib.handlers.uploads import handle_dead_letters

    return handle_dead_letters(event)


@app.schedule(Rate(SWEEP_MINUTES, unit=Rate.MINUTES), name="sweeper")
def sweeper(event):
    from chalicelib.handlers.sweeper import handle

    return handle(event)


# Committed changes → events (EventBridge + webhook queue). TRIM_HORIZON: records written before the
# mapping exists (a first deploy) are published too, not skipped.
@app.on_dynamodb_record(stream_arn=TABLE_STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def stream_worker(event):
    from chalicelib.handlers.stream import handle

    return handle(event)


@app.on_sqs_message(queue_arn=WEBHOOK_QUEUE_ARN, batch_size=1, maximum_concurrency=WEBHOOK_MAX_CONCURRENCY)
def webhook_worker(event):
    from chalicelib.handlers.webhooks import handle

    return handle(event)


# Exports: one step of a zip per message; a step short of time hands on to the next (docs/exports.md).
@app.on_sqs_message(queue_arn=EXPORT_QUEUE_ARN, batch_size=1)
def export_worker(event):
    from chalicelib.handlers.exports import handle

    return handle(event)
