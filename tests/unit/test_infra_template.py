"""Invariants of the AWS resource definition (infra/resources.json), the per-function Chalice config
and the IAM policy files, checked without packaging (tests/integration/test_package.py checks the
packaged result)."""
from __future__ import annotations

import json
import re

import pytest

from infra.check_package import literal_names, naming_problems, resource_names, shared_names
from tests.support.infra import (
    ROOT,
    Function,
    app_functions,
    as_list,
    load_chalice_config,
    load_resources,
    merged_template,
    policy_file,
    queues_by_name,
    references,
    resource_texts,
    stack_name_of,
    statements,
)

TEMPLATE = load_resources()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = app_functions()
SQS_FUNCTIONS = [f for f in FUNCTIONS if f.queue]
UNAUTHORIZED_BODY = {"error": {"code": "unauthorized", "message": "Missing or invalid bearer token", "details": {}}}

# What each function may touch (logical ids), and in the bucket, which actions on which prefixes.
ALLOWED_RESOURCES = {
    "api_handler": {"AvatarTable", "UploadBucket", "GenerationQueue", "CleanupQueue", "UploadQueue", "WebhookQueue",
                    "ExportQueue", "JwtSecret"},
    "jwt_auth": {"JwtSecret"},
    # HfTokenSecret: the attribute suggestion model (issue 30) is called with the HF token.
    "upload_worker": {"UploadQueue", "AvatarTable", "UploadBucket", "HfTokenSecret"},
    "generation_worker": {"GenerationQueue", "AvatarTable", "UploadBucket", "HfTokenSecret"},
    "generation_dlq_worker": {"GenerationDlq", "AvatarTable"},
    "usage_worker": {"UsageEventsQueue", "UsageEventsDlq", "AvatarTable"},
    "cleanup_worker": {"CleanupQueue", "AvatarTable", "UploadBucket"},
    "upload_dlq_worker": {"UploadDlq", "AvatarTable", "UploadBucket"},
    "sweeper": {"AvatarTable", "UploadBucket", "CleanupQueue", "ExportQueue"},
    "stream_worker": {"AvatarTable", "EventBus", "WebhookQueue", "StreamDlq", "StreamRecordsDlq"},
    "webhook_worker": {"WebhookQueue", "WebhookDlq", "AvatarTable"},
    "export_worker": {"ExportQueue", "AvatarTable", "UploadBucket"},
}
BUCKET_GRANTS = {
    "api_handler": {("s3:PutObject", "uploads"), ("s3:GetObject", "images"), ("s3:GetObject", "thumbs"),
                    ("s3:GetObject", "display"), ("s3:GetObject", "presets"), ("s3:GetObject", "exports"),
                    ("s3:DeleteObject", "uploads"), ("s3:DeleteObject", "images"), ("s3:DeleteObject", "thumbs"),
                    ("s3:DeleteObject", "display")},
    "jwt_auth": set(),
    "upload_worker": {("s3:GetObject", "uploads"), ("s3:DeleteObject", "uploads"), ("s3:GetObject", "images"),
                      ("s3:GetObject", "display"),  # the display copy is what the suggestion model sees
                      ("s3:PutObject", "images"),
                      ("s3:PutObject", "thumbs"), ("s3:PutObject", "display"), ("s3:DeleteObject", "images"),
                      ("s3:DeleteObject", "thumbs"), ("s3:DeleteObject", "display")},
    "generation_worker": {(action, prefix) for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")
                          for prefix in ("images", "thumbs", "display")},
    "generation_dlq_worker": set(),
    "usage_worker": set(),
    "cleanup_worker": {("s3:DeleteObject", "uploads"), ("s3:DeleteObject", "images"), ("s3:DeleteObject", "thumbs"),
                       ("s3:DeleteObject", "display")},
    "upload_dlq_worker": {("s3:DeleteObject", "uploads")},
    "sweeper": {(action, prefix) for action in ("s3:GetObject", "s3:DeleteObject")
                for prefix in ("uploads", "images", "thumbs", "display")}
               | {("s3:DeleteObject", "exports"), ("s3:AbortMultipartUpload", "exports")},
    "stream_worker": set(),
    "webhook_worker": set(),
    "export_worker": {("s3:GetObject", p) for p in ("images", "thumbs", "display", "exports")}
                     | {(a, "exports") for a in ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")},
}


def typed(kind: str) -> dict[str, dict]:
    return {lid: r for lid, r in RESOURCES.items() if r.get("Type") == kind}


def policy(function_name: str) -> dict:
    path = policy_file(function_name)
    assert path is not None, f"{function_name} has no iam_policy_file in .chalice/config.json"
    return json.loads(path.read_text())


# Dead-letter queues that no queue redrives into: the stream handler parks records in its own.
HANDLER_DLQS = {"StreamRecordsDlq"}


def dlq_names() -> set[str]:
    """Queues that are some queue's dead-letter target, an event source's on-failure destination,
    or a handler's own dead-letter queue."""
    targets = set(HANDLER_DLQS)
    for _, props in queues_by_name(TEMPLATE).values():
        arn = (props.get("RedrivePolicy") or {}).get("deadLetterTargetArn")
        if arn:
            targets.add(next(references(arn)))
    for resource in RESOURCES.values():
        for source in ((resource.get("Properties") or {}).get("Events") or {}).values():
            destination = ((source.get("Properties") or {}).get("DestinationConfig") or {}).get("OnFailure")
            if destination:
                targets.add(next(references(destination["Destination"])))
    return {name for name, (lid, _) in queues_by_name(TEMPLATE).items() if lid in targets}


# ---- queues -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(set(queues_by_name(TEMPLATE)) - dlq_names()))
def test_every_work_queue_has_a_dlq_after_3_receives(name):
    lid, props = queues_by_name(TEMPLATE)[name]
    redrive = props.get("RedrivePolicy") or {}
    max_receive = redrive.get("maxReceiveCount")
    if lid == "GenerationQueue":  # the job's attempts (test_generation_attempts_have_one_source)
        assert max_receive == {"Ref": "GenerationMaxAttempts"}
        max_receive = int(TEMPLATE["Parameters"]["GenerationMaxAttempts"]["Default"])
    assert max_receive == 3, f"{lid}: maxReceiveCount {max_receive}"
    target = next(references(redrive["deadLetterTargetArn"]))
    assert RESOURCES[target]["Type"] == "AWS::SQS::Queue"
    assert RESOURCES[target]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600  # time to fix and redrive


@pytest.mark.parametrize("function", SQS_FUNCTIONS, ids=lambda f: f.name)
def test_queue_visibility_is_at_least_six_times_its_function_timeout(function):
    assert function.queue in queues_by_name(TEMPLATE), f"{function.name} consumes {function.queue}: not in infra/"
    _, props = queues_by_name(TEMPLATE)[function.queue]
    timeout = RESOURCES[function.logical_id]["Properties"]["Timeout"]
    assert props.get("VisibilityTimeout", 30) >= 6 * timeout


@pytest.mark.parametrize("function", SQS_FUNCTIONS, ids=lambda f: f.name)
def test_event_sources_report_partial_failures_and_cap_concurrency(function):
    events = RESOURCES[function.logical_id]["Properties"]["Events"]
    source = events[f"{function.logical_id}SqsEventSource"]["Properties"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "MaximumConcurrency" in source["ScalingConfig"]


def test_generation_concurrency_matches_the_app_and_lambdas_minimum():
    """A literal, not a parameter: ministack's event source poller compares MaximumConcurrency as a
    number and a Ref resolves to a string there (it stops every poller). app.py's constant is the
    source of truth; the local feeder runs the same number of pollers."""
    from app import app
    from chalicelib.config import GENERATION_MAX_CONCURRENCY

    source = RESOURCES["GenerationWorker"]["Properties"]["Events"]["GenerationWorkerSqsEventSource"]
    assert source["Properties"]["ScalingConfig"]["MaximumConcurrency"] == GENERATION_MAX_CONCURRENCY >= 2
    decorated = next(e for e in app.event_sources if e.name == "generation_worker")
    assert decorated.maximum_concurrency == GENERATION_MAX_CONCURRENCY


# ---- functions ----------------------------------------------------------------------------------

def test_every_function_is_sized_logged_and_alarmed_and_nothing_else_is_extended():
    """An entry without Type merges into a Chalice resource: one for a function app.py lacks
    would leave a half resource in the package (infra.check_package refuses it too)."""
    expected = {f.logical_id for f in FUNCTIONS}
    extended = {lid for lid, r in RESOURCES.items() if "Type" not in r} - {"RestAPI", "ManagedLayer"}
    assert extended == expected
    for f in FUNCTIONS:
        props = RESOURCES[f.logical_id]["Properties"]
        assert 1 <= props["Timeout"] <= (29 if f.name == "api_handler" else 900)  # API Gateway waits 29 s
        assert 128 <= props["MemorySize"] <= 10240
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[log_group]["Properties"]["RetentionInDays"] <= 90
        alarm = RESOURCES[f"{f.logical_id}ErrorsAlarm"]["Properties"]
        assert (alarm["MetricName"], alarm["Dimensions"]) == (
            "Errors", [{"Name": "FunctionName", "Value": {"Ref": f.logical_id}}])


def source_queue_suffix(dlq: str) -> str:
    """The `queue` dimension of a DLQ's `DeadLetters` metric: its source queue's name without the stack's
    (`avatar-creator-generations-dlq` ← `avatar-creator-generations` → "generations")."""
    lid, _ = queues_by_name(TEMPLATE)[dlq]
    [source] = [name for name, (_, props) in queues_by_name(TEMPLATE).items()
                if lid in references((props.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))]
    return source.removeprefix("avatar-creator-")


def dlq_consumers() -> dict[str, Function]:
    """{DLQ name: the app.py function consuming it} (a consumer drains its DLQ at once)."""
    return {f.queue: f for f in SQS_FUNCTIONS if f.queue in dlq_names()}


def alarms_on(metric: str) -> list[dict]:
    return [a["Properties"] for a in typed("AWS::CloudWatch::Alarm").values() if a["Properties"]["MetricName"] == metric]


def depth_alarms(dlq: str) -> list[dict]:
    lid, _ = queues_by_name(TEMPLATE)[dlq]
    return [a for a in alarms_on("ApproximateNumberOfMessagesVisible")
            if a["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [lid, "QueueName"]}}]]


def dead_letter_alarms(queue: str) -> list[dict]:
    return [a for a in alarms_on("DeadLetters") if {"Name": "queue", "Value": queue} in a["Dimensions"]]


def stage_environment(stage: str) -> dict[str, str]:
    config = load_chalice_config()
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


@pytest.mark.parametrize("dlq", sorted(dlq_names()))
def test_every_dlq_is_alarmed_by_its_consumers_metric_or_else_by_its_depth(dlq):
    """A DLQ that app.py consumes is drained at once, so its depth never shows a dead letter: its alarm
    watches the `DeadLetters` metric its consumer emits. A DLQ nothing consumes keeps its messages: a
    depth alarm. A new DLQ fails here until it has one of the two."""
    depth = depth_alarms(dlq)
    if dlq in dlq_consumers():
        metric_alarms = dead_letter_alarms(source_queue_suffix(dlq))
        assert len(metric_alarms) == 1 and depth == [], f"{dlq}: one DeadLetters alarm, no depth alarm"
    else:  # (no source queue needed: the stream's DLQs are written by Lambda and by the stream handler)
        assert len(depth) == 1, f"{dlq}: one depth alarm"
        assert (depth[0]["ComparisonOperator"], depth[0]["Threshold"]) == ("GreaterThanThreshold", 0)


def test_dlq_consumers_exist_for_the_generation_and_upload_dlqs_only():
    assert {f.name for f in dlq_consumers().values()} == {"generation_dlq_worker", "upload_dlq_worker"}
    assert sorted(source_queue_suffix(d) for d in dlq_consumers()) == ["generations", "uploads"]


def test_every_dead_letters_alarm_fires_on_one_message_within_a_minute_in_the_stages_namespace():
    metric_alarms = alarms_on("DeadLetters")
    assert len(metric_alarms) == len(dlq_consumers())  # none for a queue no consumer counts
    for stage in ("dev", "prod"):
        namespace = stage_environment(stage)["POWERTOOLS_METRICS_NAMESPACE"]
        service = stage_environment(stage)["POWERTOOLS_SERVICE_NAME"]
        for alarm in metric_alarms:
            assert alarm["Namespace"] == namespace
            assert {"Name": "service", "Value": service} in alarm["Dimensions"] and len(alarm["Dimensions"]) == 2
    for alarm in metric_alarms:
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 60, 1)
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert alarm["TreatMissingData"] == "notBreaching"  # no dead letter → no datapoint → OK


@pytest.mark.parametrize("dlq", sorted(dlq_consumers()))
def test_each_dlq_consumer_emits_exactly_the_metric_its_alarm_watches(dlq, monkeypatch, capsys):
    """The consumer, run as Lambda runs it (the prod stage's environment), on a dead letter it cannot
    read: the EMF line it writes has the alarm's namespace, metric name and dimension set (an alarm
    matches a metric only on all of its dimensions)."""
    import hashlib

    from app import app

    for key, value in stage_environment("prod").items():
        monkeypatch.setenv(key, value)
    function = dlq_consumers()[dlq]
    body = "not a message"
    event = {"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "body": body, "attributes": {},
                          "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                          "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{dlq}",
                          "awsRegion": "us-east-1"}]}
    assert app.handler_map[function.name](event, None) == {"batchItemFailures": []}
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    [line] = [x for x in emitted if "DeadLetters" in x]
    [directive] = line["_aws"]["CloudWatchMetrics"]
    [alarm] = dead_letter_alarms(source_queue_suffix(dlq))
    assert directive["Namespace"] == alarm["Namespace"]
    assert [m["Name"] for m in directive["Metrics"]] == [alarm["MetricName"]] and line["DeadLetters"] == [1.0]
    [dimensions] = directive["Dimensions"]
    assert {(name, line[name]) for name in dimensions} == {(d["Name"], d["Value"]) for d in alarm["Dimensions"]}


def test_every_alarm_notifies_the_alarm_topic_when_there_is_one():
    expected = {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    alarms = typed("AWS::CloudWatch::Alarm")
    assert alarms and all(a["Properties"]["AlarmActions"] == expected for a in alarms.values())
    # Every alarm says what happened and what to do, within CloudWatch's 1024 characters.
    assert all(0 < len(a["Properties"]["AlarmDescription"]) <= 1024 for a in alarms.values())


def test_functions_get_resource_names_from_the_template_not_from_constants():
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    for key in ("TABLE_NAME", "UPLOAD_BUCKET", "UPLOAD_QUEUE_URL", "GENERATION_QUEUE_URL",
                "GENERATION_DLQ_URL", "USAGE_EVENTS_QUEUE_URL", "USAGE_EVENTS_DLQ_URL", "CLEANUP_QUEUE_URL",
                "JWT_SECRET_ARN", "HF_TOKEN_ARN"):
        assert set(references(env[key])) <= set(RESOURCES), key
    config = load_chalice_config()
    # A function-level value (what Chalice writes from its config) would win over these Globals.
    for scope in [config] + list(config["stages"].values()):
        assert not set(scope.get("environment_variables", {})) & set(env)


# ---- bucket, tables, secrets --------------------------------------------------------------------

def test_bucket_is_private_encrypted_expires_abandoned_uploads_and_allows_browser_posts():
    props = RESOURCES["UploadBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"][k] is True for k in
               ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
    rule, exports = props["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["Prefix"], rule["ExpirationInDays"]) == ("Enabled", "uploads/", 1)
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    # Exports: a backstop behind the sweeper (which removes them after export_retention_days).
    from chalicelib.config import Settings

    assert (exports["Status"], exports["Prefix"]) == ("Enabled", "exports/")
    assert exports["ExpirationInDays"] > Settings().export_retention_days
    assert exports["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    cors, = props["CorsConfiguration"]["CorsRules"]
    assert "POST" in cors["AllowedMethods"] and cors["AllowedOrigins"] == {"Ref": "AllowedOrigins"}
    # No default: every deploy names its page's origins (docs/deploy.md), so prod never gets `*` by omission.
    assert "Default" not in TEMPLATE["Parameters"]["AllowedOrigins"]
    notify, = props["NotificationConfiguration"]["QueueConfigurations"]
    assert notify["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert notify["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]


def test_tables_have_point_in_time_recovery_ttl_and_encryption():
    table = RESOURCES["AvatarTable"]
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    assert {i["IndexName"] for i in props["GlobalSecondaryIndexes"]} == {"GSI1", "GSI2", "GSI3"}


def test_the_only_table_is_the_avatar_table():
    """Idempotency-Key replays are items of the main table (IdempotencyKeyModel): no second table."""
    assert set(typed("AWS::DynamoDB::Table")) == {"AvatarTable"}
    texts = json.dumps(TEMPLATE) + "".join(p.read_text() for p in (ROOT / ".chalice").glob("*.json"))
    assert "IDEMPOTENCY_TABLE" not in texts and "IdempotencyTable" not in texts
    assert "GENERATION_CONCURRENCY" not in texts  # no setting reads it: MaximumConcurrency is the cap


def test_jwt_secret_is_generated_and_the_hf_token_is_never_in_the_template():
    jwt = RESOURCES["JwtSecret"]["Properties"]
    assert jwt["GenerateSecretString"]["PasswordLength"] >= 32 and "SecretString" not in jwt
    hf = RESOURCES["HfTokenSecret"]["Properties"]
    assert "SecretString" not in hf and "GenerateSecretString" not in hf


# ---- API Gateway ----------------------------------------------------------------------------------

def gateway_responses() -> dict:
    return RESOURCES["RestAPI"]["Properties"]["GatewayResponses"]


@pytest.mark.parametrize("kind", ["UNAUTHORIZED", "ACCESS_DENIED"])
def test_refused_tokens_answer_401_in_the_error_shape(kind):
    response = gateway_responses()[kind]
    assert response["StatusCode"] == "401"
    assert json.loads(response["ResponseTemplates"]["application/json"]) == UNAUTHORIZED_BODY


def test_unknown_routes_answer_404_not_found():
    response = gateway_responses()["MISSING_AUTHENTICATION_TOKEN"]
    assert response["StatusCode"] == "404"
    assert json.loads(response["ResponseTemplates"]["application/json"])["error"]["code"] == "not_found"


@pytest.mark.parametrize("kind", ["UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "THROTTLED",
                                  "REQUEST_TOO_LARGE", "DEFAULT_4XX", "DEFAULT_5XX"])
def test_gateway_errors_have_the_error_shape_and_cors_headers(kind):
    response = gateway_responses()[kind]
    assert response["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] == "'*'"
    # $context.error.messageString renders as a quoted JSON string: substitute one to parse the shape.
    body = response["ResponseTemplates"]["application/json"].replace("$context.error.messageString", '"x"')
    assert set(json.loads(body)["error"]) == {"code", "message", "details"}


def test_outputs_keep_the_local_stack_names_and_add_the_api_url():
    from local.provision import OUTPUT_KEYS

    outputs = TEMPLATE["Outputs"]
    assert set(OUTPUT_KEYS) - {"AwsEndpoint", "Region"} <= set(outputs)
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}


# ---- IAM ------------------------------------------------------------------------------------------

def test_every_function_has_its_own_policy_file_and_no_generated_policy():
    config = load_chalice_config()
    assert config["autogen_policy"] is False
    assert not any("autogen_policy" in s or "iam_policy_file" in s for s in config["stages"].values())
    files = {f.name: policy_file(f.name) for f in FUNCTIONS}
    assert all(path is not None and path.exists() for path in files.values()), files
    assert len(set(files.values())) == len(files)  # one role per function


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_policy_statements_name_specific_actions_and_resources(function):
    path = policy_file(function.name)
    for statement in statements(json.loads(path.read_text())):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{path.name} {statement.get('Sid')}: {action}"
        for resource in as_list(statement["Resource"]):
            assert resource != "*" and isinstance(resource, dict), f"{path.name}: {resource}"
            assert set(references(resource)) <= set(RESOURCES), f"{path.name}: {resource}"
        for text in resource_texts(statement["Resource"]):
            # Wildcards only for object keys under a named prefix of the bucket.
            assert "*" not in text or re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{UploadBucket\}/[a-z]+/\*", text)


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_each_function_policy_names_only_its_own_resources(function):
    doc = policy(function.name)
    named = {lid for s in statements(doc) for lid in references(s["Resource"])}
    own_log_group = f"{function.logical_id}LogGroup"
    assert own_log_group in named
    assert named - {own_log_group} == ALLOWED_RESOURCES[function.name]
    grants = set()
    for s in statements(doc):
        for text in resource_texts(s["Resource"]):
            prefix = re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{UploadBucket\}/([a-z]+)/\*", text)
            if prefix:
                grants |= {(action, prefix.group(1)) for action in as_list(s["Action"])}
            elif as_list(s["Action"]) == ["s3:ListBucket"]:
                # Only so a missing object answers 404, not 403; limited to prefixes it reads.
                prefixes = s["Condition"]["StringLike"]["s3:prefix"]
                assert {p.split("/")[0] for p in prefixes} <= {g[1] for g in BUCKET_GRANTS[function.name]
                                                                if g[0] == "s3:GetObject"}
            else:
                assert not any(a.startswith("s3:") for a in as_list(s["Action"]))
    assert grants == BUCKET_GRANTS[function.name]


@pytest.mark.parametrize("function", SQS_FUNCTIONS, ids=lambda f: f.name)
def test_queue_functions_may_consume_only_their_own_queue(function):
    lid, _ = queues_by_name(TEMPLATE)[function.queue]
    consuming = [s for s in statements(policy(function.name)) if "sqs:ReceiveMessage" in as_list(s["Action"])]
    assert len(consuming) == 1 and consuming[0]["Resource"] == [{"Fn::GetAtt": [lid, "Arn"]}]
    assert set(as_list(consuming[0]["Action"])) == {"sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                     "sqs:GetQueueAttributes"}


# ---- events out ---------------------------------------------------------------------------------

def test_the_table_streams_old_and_new_images_to_the_stream_worker():
    assert RESOURCES["AvatarTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    source = RESOURCES["StreamWorker"]["Properties"]["Events"]["StreamWorkerDynamodbEventSource"]["Properties"]
    # app.py's stream ARN is a placeholder (Chalice wants a constant): the package must replace it.
    assert source["Stream"] == {"Fn::GetAtt": ["AvatarTable", "StreamArn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and source["BisectBatchOnFunctionError"]
    # Bounded: a record that always fails neither blocks its shard for 24 h nor vanishes.
    assert 0 < source["MaximumRetryAttempts"] <= 100 and 60 <= source["MaximumRecordAgeInSeconds"] < 86400
    assert source["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["StreamDlq", "Arn"]}}
    from app import app

    [stream] = [e for e in app.event_sources if e.name == "stream_worker"]
    assert stream.starting_position == "TRIM_HORIZON"  # a first deploy publishes what came before the mapping


def test_the_event_bus_and_webhook_queues_are_outputs_and_in_every_functions_environment():
    outputs, env = TEMPLATE["Outputs"], TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert outputs["EventBusName"]["Value"] == {"Ref": "EventBus"} == env["EVENT_BUS_NAME"]
    assert outputs["EventBusArn"]["Value"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert RESOURCES["EventBus"]["Type"] == "AWS::Events::EventBus"
    assert env["WEBHOOK_QUEUE_URL"] == {"Ref": "WebhookQueue"} and env["WEBHOOK_DLQ_URL"] == {"Ref": "WebhookDlq"}


def test_the_handler_parks_records_before_lambda_gives_up_and_both_queues_are_alarmed_outputs():
    from chalicelib.config import Settings

    source = RESOURCES["StreamWorker"]["Properties"]["Events"]["StreamWorkerDynamodbEventSource"]["Properties"]
    # The handler's own limit comes first, so the record itself (not only its sequence number) is kept.
    assert Settings().stream_max_attempts < source["MaximumRetryAttempts"]
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["STREAM_RECORDS_DLQ_URL"] == {"Ref": "StreamRecordsDlq"}
    assert TEMPLATE["Outputs"]["StreamDlqUrl"]["Value"] == {"Ref": "StreamDlq"}
    assert TEMPLATE["Outputs"]["StreamRecordsDlqUrl"]["Value"] == {"Ref": "StreamRecordsDlq"}
    assert {"StreamDlq", "StreamRecordsDlq"} <= {queues_by_name(TEMPLATE)[n][0] for n in dlq_names()}


def test_private_webhook_targets_are_never_allowed_by_the_deployed_configuration():
    texts = json.dumps(TEMPLATE) + json.dumps(load_chalice_config())
    assert "WEBHOOK_ALLOW_PRIVATE" not in texts


# ---- stages side by side ------------------------------------------------------------------------

@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_packages_name_every_resource_after_their_stack(stage):
    """The merged template of `make package STAGE=<stage>` (Chalice's generator and merger, without the
    zips): every name is generated or `${AWS::StackName}-…`, every event source is the template's
    resource (no placeholder of chalicelib/config.py left), no ARN is for the `aws` partition only."""
    template = merged_template(stage)
    assert naming_problems(template) == []
    assert literal_names(template) == set()
    assert set(resource_names(template)) >= {"AvatarTable", "UploadBucket", "EventBus", "ManagedLayer",
                                             *typed("AWS::SQS::Queue")}
    alarms = {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms and not any("AlarmName" in r["Properties"] for r in alarms.values())  # generated per stack


def test_dev_and_prod_packages_share_no_resource_name():
    dev, prod = merged_template("dev"), merged_template("prod")
    assert shared_names(dev, prod) == set()
    # As CloudFormation would name them in stacks avatar-creator-dev and avatar-creator-prod:
    names = {stage: {stack_name_of(v, f"avatar-creator-{stage}") for v in resource_names(t).values()}
             for stage, t in (("dev", dev), ("prod", prod))}
    assert names["dev"] and not names["dev"] & names["prod"]
    # …and the check does see a name written out in both (what the template had before).
    fixed = json.loads(json.dumps(prod))
    fixed["Resources"]["AvatarTable"]["Properties"]["TableName"] = "avatar-creator"
    assert shared_names(fixed, fixed) == {"avatar-creator"}
    assert any(line.startswith("AvatarTable: name") for line in naming_problems(fixed))


@pytest.mark.parametrize("function", SQS_FUNCTIONS, ids=lambda f: f.name)
def test_each_sqs_event_source_is_the_queue_its_placeholder_names(function):
    """app.py's queue ARNs are placeholders ending in the local stack's queue names; the package
    replaces each with that queue's ARN. The override only replaces a string: Chalice's `queue=` would
    write an Fn::Sub that the merge would combine with the GetAtt into one invalid object."""
    lid, _ = queues_by_name(TEMPLATE)[function.queue]
    for stage in ("dev", "prod"):
        source = merged_template(stage)["Resources"][function.logical_id]["Properties"]["Events"]
        assert source[f"{function.logical_id}SqsEventSource"]["Properties"]["Queue"] == {"Fn::GetAtt": [lid, "Arn"]}


def test_no_arn_is_written_for_one_partition():
    texts = json.dumps(TEMPLATE) + "".join(p.read_text() for p in (ROOT / ".chalice").glob("*.json"))
    assert "arn:aws:" not in texts
    statement, = RESOURCES["UploadQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::" + RESOURCES["UploadBucket"]["Properties"]["BucketName"]["Fn::Sub"]}


def test_a_prod_package_with_a_wildcard_cors_default_is_refused():
    prod, dev = json.loads(json.dumps(merged_template("prod"))), json.loads(json.dumps(merged_template("dev")))
    for template in (prod, dev):
        template["Parameters"]["AllowedOrigins"]["Default"] = "*"
    assert any("AllowedOrigins" in line for line in naming_problems(prod))
    assert not any("AllowedOrigins" in line for line in naming_problems(dev))  # a dev stack may allow any page


# ---- one source for the generation attempts ---------------------------------------------------------

def test_generation_attempts_have_one_source():
    """SQS moves a generation message to the DLQ after maxReceiveCount receives, and the worker gives up
    after GENERATION_MAX_ATTEMPTS: both are the GenerationMaxAttempts parameter, whose default is the
    setting's."""
    from chalicelib.config import Settings

    parameter = TEMPLATE["Parameters"]["GenerationMaxAttempts"]
    assert int(parameter["Default"]) == Settings().generation_max_attempts == 3
    assert RESOURCES["GenerationQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == {
        "Ref": "GenerationMaxAttempts"}
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["GENERATION_MAX_ATTEMPTS"] == {"Ref": "GenerationMaxAttempts"}
    assert TEMPLATE["Outputs"]["GenerationMaxAttempts"]["Value"] == {"Ref": "GenerationMaxAttempts"}
    for stage in ("dev", "prod"):  # no function-level value (Chalice's config) overrides the Globals one
        for r in merged_template(stage)["Resources"].values():
            if r["Type"] == "AWS::Serverless::Function":
                assert "GENERATION_MAX_ATTEMPTS" not in r["Properties"].get("Environment", {}).get("Variables", {})


def test_the_local_stack_takes_the_attempts_from_the_same_parameter(monkeypatch):
    from local.provision import Resolver
    from local.stack import app_environment, template_parameters

    resolver = Resolver(TEMPLATE, "us-east-1", "000000000000")
    assert resolver.parameters["GenerationMaxAttempts"] == 3
    monkeypatch.setenv("GENERATION_MAX_ATTEMPTS", "5")
    resolver = Resolver(TEMPLATE, "us-east-1", "000000000000", template_parameters())
    resolver.attrs["GenerationDlq"] = {"Arn": "arn:aws:sqs:us-east-1:000000000000:avatar-creator-generations-dlq"}
    redrive = resolver.resolve(RESOURCES["GenerationQueue"]["Properties"]["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 5
    outputs = {key: "x" for key in TEMPLATE["Outputs"]} | {"AwsEndpoint": "x", "Region": "us-east-1",
                                                          "GenerationMaxAttempts": 5}
    assert app_environment(outputs, "secret")["GENERATION_MAX_ATTEMPTS"] == "5"


# ---- issue 32: the generation worker's cap is a stack parameter -------------------------------------------

def test_the_package_makes_generation_concurrency_a_parameter_and_the_emulator_gets_a_number():
    from chalicelib.config import GENERATION_MAX_CONCURRENCY
    from infra.stack_parameters import PARAMETER, parameterize, problems, resolve_for_emulator
    from tests.support.infra import merged_template

    # GIVEN the merged template `make package` writes (a literal cap, as Chalice generates it)
    merged = merged_template("prod")
    assert problems(merged)  # the check refuses a package that skipped the step

    # WHEN the package step runs
    packaged = parameterize(merged)

    # THEN the cap is the parameter, whose default is app.py's constant and whose description says the rule
    source = packaged["Resources"]["GenerationWorker"]["Properties"]["Events"]["GenerationWorkerSqsEventSource"]
    assert source["Properties"]["ScalingConfig"]["MaximumConcurrency"] == {"Ref": PARAMETER}
    definition = packaged["Parameters"][PARAMETER]
    assert definition["Default"] == str(GENERATION_MAX_CONCURRENCY) and definition["MinValue"] == "2"
    assert "in flight" in definition["Description"] and "docs/deploy.md" in definition["Description"]
    assert problems(packaged) == []
    # and ministack, which compares the cap as a number, gets the chosen value back as one
    local = resolve_for_emulator(packaged, {PARAMETER: "7"})
    local_source = local["Resources"]["GenerationWorker"]["Properties"]["Events"]["GenerationWorkerSqsEventSource"]
    assert local_source["Properties"]["ScalingConfig"]["MaximumConcurrency"] == 7 and PARAMETER not in local["Parameters"]


def test_the_usage_workers_cap_is_a_parameter_whose_default_is_the_templates_literal():
    from infra.stack_parameters import USAGE_PARAMETER, parameterize, resolve_for_emulator
    from tests.support.infra import merged_template

    merged = merged_template("prod")
    literal = merged["Resources"]["UsageWorker"]["Properties"]["Events"]["UsageWorkerSqsEventSource"][
        "Properties"]["ScalingConfig"]["MaximumConcurrency"]
    packaged = parameterize(merged)
    source = packaged["Resources"]["UsageWorker"]["Properties"]["Events"]["UsageWorkerSqsEventSource"]["Properties"]
    assert source["ScalingConfig"]["MaximumConcurrency"] == {"Ref": USAGE_PARAMETER}
    assert packaged["Parameters"][USAGE_PARAMETER]["Default"] == str(literal)
    assert parameterize(packaged)["Parameters"][USAGE_PARAMETER]["Default"] == str(literal)  # idempotent
    local = resolve_for_emulator(packaged, {})
    assert local["Resources"]["UsageWorker"]["Properties"]["Events"]["UsageWorkerSqsEventSource"]["Properties"][
        "ScalingConfig"]["MaximumConcurrency"] == literal


def test_the_parameterized_template_is_cfn_lint_clean(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from infra.stack_parameters import parameterize
    from tests.support.infra import merged_template

    path = tmp_path / "sam.json"
    path.write_text(json.dumps(parameterize(merged_template("prod"))))
    lint = Path(sys.executable).parent / "cfn-lint"
    done = subprocess.run([str(lint), str(path)], capture_output=True, text=True, timeout=300)
    # Without the zips, Chalice's build placeholders (CodeUri) are the only findings allowed
    findings = [line for line in done.stdout.splitlines() if line[:1] in ("E", "W")]
    assert all("Placeholder" in line for line in findings), done.stdout
