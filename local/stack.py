"""`python -m local.stack` (`make run`): the whole service on one machine.

1. ministack (S3, SQS, DynamoDB… persisted under LOCAL_DATA_DIR) on 127.0.0.1:LOCAL_AWS_PORT;
2. the resources of infra/resources.json, provisioned idempotently;
3. the app's environment (STAGE=local, endpoint, names, JWT secret);
4. the page and the API on 127.0.0.1:PORT;
5. every `@app.on_sqs_message` handler fed from its queue, the `@app.on_dynamodb_record` handler
   from the table's stream (local/streams.py; position kept in LOCAL_DATA_DIR/stream-checkpoints.json).
Runs until SIGINT/SIGTERM, then stops in reverse order; ministack gets SIGTERM and saves its state.

Environment: PORT (8000), LOCAL_AWS_PORT (4566), LOCAL_DATA_DIR (.local-data), JWT_SECRET (dev
default), LOCAL_VISIBILITY_TIMEOUT (seconds, replaces every queue's VisibilityTimeout — for tests),
LOCAL_AWS_SERVICES (ministack services, comma list or "all"), LOCAL_FEEDER_CONCURRENCY
("handler=N,queue-name=N"), LOCAL_FEEDER_WAIT_SECONDS (long-poll wait, 1), LOCAL_ACCESS_LOG (1),
LOCAL_SEED (1: load the preset gallery at start; 0 skips it), LOCAL_SWEEP_SECONDS (30: how often the
`@app.schedule` handlers — the sweeper — run), LOCAL_STREAMS (1: feed the table's stream to the stream
handler; 0 leaves it unread, as if the publisher had crashed — for tests).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from local import aws
from local.ministack import LocalStackError, Ministack, port_in_use, services_from_env

DEV_JWT_SECRET = "local-dev-secret-change-me-never-deploy-this"  # >= 32 bytes (RFC 7518)
ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger("local.stack")


def _int_env(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _concurrency_env(raw: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in (raw or "").split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = int(value)
    return out


def app_environment(outputs: dict, jwt_secret: str) -> dict[str, str]:
    """What the app's Settings read. Resource names and the endpoint must match what was provisioned;
    everything else the user set (FLUX_ENDPOINT_URL, GENERATION_*, LOG_LEVEL…) passes through."""
    return {
        "AWS_ENDPOINT_URL": outputs["AwsEndpoint"],
        "AWS_REGION": outputs["Region"],
        "AWS_DEFAULT_REGION": outputs["Region"],
        "AWS_ACCESS_KEY_ID": aws.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": aws.SECRET_ACCESS_KEY,
        "TABLE_NAME": outputs["TableName"],
        "UPLOAD_BUCKET": outputs["UploadBucket"],
        "UPLOAD_QUEUE_URL": outputs["UploadQueueUrl"],
        "GENERATION_QUEUE_URL": outputs["GenerationQueueUrl"],
        "GENERATION_DLQ_URL": outputs["GenerationDlqUrl"],
        "USAGE_EVENTS_QUEUE_URL": outputs["UsageEventsQueueUrl"],
        "USAGE_EVENTS_DLQ_URL": outputs["UsageEventsDlqUrl"],
        "CLEANUP_QUEUE_URL": outputs["CleanupQueueUrl"],
        "EXPORT_QUEUE_URL": outputs["ExportQueueUrl"],
        "EVENT_BUS_NAME": outputs["EventBusName"],
        "WEBHOOK_QUEUE_URL": outputs["WebhookQueueUrl"],
        "WEBHOOK_DLQ_URL": outputs["WebhookDlqUrl"],
        "STREAM_RECORDS_DLQ_URL": outputs["StreamRecordsDlqUrl"],
        # The template's parameter, which also set the generation queue's maxReceiveCount.
        "GENERATION_MAX_ATTEMPTS": str(outputs["GenerationMaxAttempts"]),
        # Webhooks to http://127.0.0.1 (tests, a receiver on this machine): never set on AWS.
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "JWT_SECRET": jwt_secret,
    }


def template_parameters() -> dict[str, str]:
    """GENERATION_MAX_ATTEMPTS, when set, is the template's GenerationMaxAttempts: the generation
    queue's maxReceiveCount follows it as on AWS, and the app reads it back from the outputs."""
    attempts = os.environ.get("GENERATION_MAX_ATTEMPTS", "").strip()
    return {"GenerationMaxAttempts": attempts} if attempts else {}


def configure_environment(outputs: dict, jwt_secret: str) -> None:
    for key in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                "JWT_SECRET_ARN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(key, None)  # real credentials/profiles must not reach the emulator
    os.environ.update(app_environment(outputs, jwt_secret))
    os.environ["STAGE"] = "local"  # never a shell's STAGE=prod: the local stack is not production
    visibility = os.environ.get("LOCAL_VISIBILITY_TIMEOUT", "").strip()
    if visibility and not os.environ.get("GENERATION_LEASE_SECONDS"):
        # Queues made short-lived for tests: a run that died is taken over a few visibility periods
        # later, not after 3 minutes (a delivery that comes back earlier waits for the lease's end).
        os.environ["GENERATION_LEASE_SECONDS"] = str(max(6, 3 * int(visibility)))
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "avatar-creator")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AvatarCreatorLocal")


def _check_provider() -> None:
    try:
        from infra.check_provider import main as check

        check([], out=lambda line: log.info("check-provider: %s", line))
    except Exception as exc:  # noqa: BLE001 — advice only: the stack runs either way
        log.warning("check-provider failed: %s", exc)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt=None,
                        stream=sys.stderr)
    logging.getLogger("local").setLevel(logging.INFO)
    started = time.monotonic()
    port = _int_env("PORT", 8000)
    aws_port = _int_env("LOCAL_AWS_PORT", 4566)
    data_dir = Path(os.environ.get("LOCAL_DATA_DIR") or ".local-data").resolve()
    jwt_secret = os.environ.get("JWT_SECRET") or DEV_JWT_SECRET
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or aws.REGION
    api_url = f"http://127.0.0.1:{port}"

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.info("already stopping…")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    if port_in_use(port):
        print(f"ERROR: port {port} on 127.0.0.1 is already in use (another `make run`?). "
              f"Choose another: PORT=8001 make run", file=sys.stderr)
        return 1
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "outputs.json").unlink(missing_ok=True)  # written again once everything is up

    ministack = Ministack(data_dir, aws_port, services=services_from_env(os.environ.get("LOCAL_AWS_SERVICES")))
    server = feeder = scheduler = streams = None
    try:
        try:
            ministack.launch()
            # Meanwhile: boto3 and its service models (~0.5 s), the same time ministack takes.
            from local.provision import Provisioner, write_outputs

            provisioner = Provisioner(ministack.endpoint_url, region,
                                      visibility_timeout=_int_env("LOCAL_VISIBILITY_TIMEOUT", None),
                                      parameters=template_parameters())
            provisioner.warm_up()
            ministack.wait_ready()
        except LocalStackError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
        log.info("ministack ready on %s (%.2fs)", ministack.endpoint_url, time.monotonic() - started)

        outputs = provisioner.run()
        outputs.update({"ApiUrl": api_url, "AwsEndpoint": ministack.endpoint_url, "Region": region})
        log.info("provisioned infra/resources.json: %d change(s)", len(provisioner.changes))
        configure_environment(outputs, jwt_secret)
        if os.environ.get("HF_TOKEN"):  # which providers serve the models (network only with a token)
            threading.Thread(target=_check_provider, name="check-provider", daemon=True).start()

        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from app import app  # only now: the app reads its settings from the environment above

        from local.feeder import Feeder
        from local.server import LocalServer, Site

        site = Site(api_url=api_url, jwt_secret=jwt_secret, jwt_issuer=os.environ.get("JWT_ISSUER") or None,
                    jwt_audience=os.environ.get("JWT_AUDIENCE") or None,
                    access_log=os.environ.get("LOCAL_ACCESS_LOG", "1") != "0")
        try:
            server = LocalServer(app, site, port=port).start()
        except OSError as exc:
            print(f"ERROR: cannot listen on 127.0.0.1:{port}: {exc}", file=sys.stderr)
            return 1
        feeder = Feeder(app, ministack.endpoint_url, region,
                        # Lambda runs the webhook worker up to 20 at once; 10 idle long-pollers here
                        # cost a few % of a core less (LOCAL_FEEDER_CONCURRENCY=webhook_worker=20 for all).
                        concurrency={"webhook_worker": 10,
                                     **_concurrency_env(os.environ.get("LOCAL_FEEDER_CONCURRENCY"))},
                        wait_seconds=_int_env("LOCAL_FEEDER_WAIT_SECONDS", 1) or 1,
                        client=provisioner.client("sqs")).start()
        from local.scheduler import Scheduler

        scheduler = Scheduler(app, float(os.environ.get("LOCAL_SWEEP_SECONDS") or 30)).start()
        from local.streams import StreamFeeder

        streams = StreamFeeder(app, ministack.endpoint_url, region, table_name=outputs["TableName"],
                               checkpoint_path=data_dir / "stream-checkpoints.json",
                               ddb_client=provisioner.client("dynamodb"),
                               on_failure_queue_url=outputs["StreamDlqUrl"], sqs_client=provisioner.client("sqs"))
        streams.sources = streams.discover()
        if os.environ.get("LOCAL_STREAMS", "1") != "0":  # 0: tests of "crashed before publishing"
            streams.start()
        write_outputs(outputs, data_dir)
        if os.environ.get("LOCAL_SEED", "1") != "0":
            threading.Thread(target=seed_presets, name="seed-presets", daemon=True).start()
        banner(outputs, data_dir, jwt_secret, feeder.describe() + streams.describe() + scheduler.describe(), time.monotonic() - started)

        while not stop.wait(0.5):
            if not ministack.running():
                print(f"ERROR: ministack exited unexpectedly; see {ministack.log_path}:\n{ministack.log_tail()}",
                      file=sys.stderr)
                return 1
        log.info("stopping…")
        return 0
    finally:
        if scheduler is not None:
            scheduler.stop()
        if streams is not None:
            streams.stop()
        if feeder is not None:
            feeder.stop()  # ≤ 1 s long poll, plus batches in flight
        if server is not None:
            server.stop()
        if ministack.running():
            rc = ministack.stop()
            log.info("ministack stopped (exit %s); data saved in %s", rc, data_dir)
        else:
            ministack.stop()


def seed_presets() -> None:
    """The preset gallery and persona examples (data/*.v1.json), previews drawn by the configured
    provider — in the background: the API is usable meanwhile, the gallery fills in a few seconds."""
    from infra.seed import seed_configured_stack

    started = time.monotonic()
    try:
        report = seed_configured_stack()
    except Exception as exc:  # noqa: BLE001 - the service runs without a gallery; say why
        log.error("seeding presets failed: %s: %s", type(exc).__name__, exc)
        return
    log.info("presets seeded: %s (%.1fs)", report.summary(), time.monotonic() - started)


def banner(outputs: dict, data_dir: Path, jwt_secret: str, handlers: list[str], seconds: float) -> None:
    default = " (dev default — set JWT_SECRET to change)" if jwt_secret == DEV_JWT_SECRET else ""
    lines = [
        "",
        f"  Avatar Creator — local stack ready in {seconds:.1f}s",
        f"  Page          {outputs['ApiUrl']}/",
        f"  API           {outputs['ApiUrl']}/api/apps/avatar-creator  (health: /api/apps/avatar-creator/health)",
        f"  AWS endpoint  {outputs['AwsEndpoint']}  (keys test/test, {outputs['Region']})",
        f"  Data dir      {data_dir}  (outputs.json; survives restarts)",
        f"  JWT secret    {jwt_secret}{default}",
        "  Token         make token USER=alice",
        "  Workers       " + ("\n                ".join(handlers) if handlers else "(none)"),
        "  Stop          Ctrl-C",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
