"""Create the resources of infra/resources.json (a CloudFormation template) on the local endpoint.

Idempotent: every resource is read first and created or updated only where it differs, so a second
run against persisted state changes nothing (and sends no new s3:TestEvent into the upload queue).
Also used by the functional tests under moto (`endpoint_url=None`).

Handled types: AWS::DynamoDB::Table (with its stream), AWS::S3::Bucket, AWS::SQS::Queue,
AWS::Events::EventBus. Everything else (queue
policies, secrets, alarms…) is logged as skipped. Intrinsics: Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
Fn::Select, Fn::Split, Fn::If is not supported.

LOCAL_VISIBILITY_TIMEOUT (seconds; read by local.stack and passed as `visibility_timeout`) replaces
every queue's VisibilityTimeout so that redelivery and DLQ moves can be watched in seconds.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

from local import aws

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "infra" / "resources.json"
OUTPUT_KEYS = ("ApiUrl", "AwsEndpoint", "Region", "UploadBucket", "TableName", "UploadQueueUrl", "UploadDlqUrl", "GenerationQueueUrl", "GenerationDlqUrl",
               "UsageEventsQueueUrl", "UsageEventsDlqUrl", "CleanupQueueUrl", "CleanupDlqUrl",
               "ExportQueueUrl", "ExportDlqUrl",
               "EventBusName", "EventBusArn", "WebhookQueueUrl", "WebhookDlqUrl", "StreamDlqUrl", "StreamRecordsDlqUrl",
               "GenerationMaxAttempts")
# The local stack's name: every resource name derives from it (`${AWS::StackName}-uploads`…), and the
# placeholder queue ARNs of chalicelib/config.py end in these names (the local feeder finds queues by them).
STACK_NAME = "avatar-creator"
# Parameters without a default on AWS: the page and the emulator have different origins locally.
LOCAL_PARAMETERS = {"AllowedOrigins": "*"}

log = logging.getLogger("local.provision")


class ProvisionError(RuntimeError):
    pass


# ---- intrinsic functions ------------------------------------------------------------------

_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Sub / Fn::Join / Fn::Select / Fn::Split against parameters,
    pseudo parameters and the resources provisioned so far."""

    def __init__(self, template: dict, region: str, account_id: str,
                 parameters: dict[str, Any] | None = None) -> None:
        self.template = template
        self.pseudo = {"AWS::AccountId": account_id, "AWS::Region": region, "AWS::Partition": "aws",
                       "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": STACK_NAME,
                       "AWS::NoValue": None}
        self.parameters: dict[str, Any] = {}
        given = {**LOCAL_PARAMETERS, **(parameters or {})}
        for name, spec in (template.get("Parameters") or {}).items():
            value = given.get(name, spec.get("Default"))
            if value is None:
                raise ProvisionError(f"template parameter {name} has no default; pass it in `parameters`")
            if spec.get("Type", "").startswith("CommaDelimitedList") or spec.get("Type", "").startswith("List<"):
                value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            elif spec.get("Type") == "Number":
                value = _number(name, value, spec)
            self.parameters[name] = value
        self.refs: dict[str, Any] = {}            # logical id -> Ref value
        self.attrs: dict[str, dict[str, Any]] = {}  # logical id -> {attribute: value}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise ProvisionError(f"cannot resolve Ref {name!r} (unknown, skipped or not yet created)")

    def get_att(self, name: str, attribute: str) -> Any:
        try:
            return self.attrs[name][attribute]
        except KeyError:
            raise ProvisionError(f"cannot resolve Fn::GetAtt {name}.{attribute}") from None

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match) -> str:
            key = match.group(1).strip()
            if key in variables:
                return str(variables[key])
            if "." in key and not key.startswith("AWS::"):
                return str(self.get_att(*key.split(".", 1)))
            return str(self.ref(key))

        return _SUB_VAR.sub(replace, text).replace("${!", "${")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self._sub(arg, {})
                text, variables = arg
                return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self.resolve(items))
            if key == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key.startswith("Fn::"):
                raise ProvisionError(f"unsupported intrinsic {key}")
        return {k: self.resolve(v) for k, v in value.items()}


def _number(name: str, value: Any, spec: dict) -> int | float:
    """A Number parameter as CloudFormation checks it (MinValue/MaxValue), kept a number locally."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProvisionError(f"template parameter {name} must be a number, not {value!r}") from None
    for bound, ok in (("MinValue", lambda b: number >= b), ("MaxValue", lambda b: number <= b)):
        if bound in spec and not ok(float(spec[bound])):
            raise ProvisionError(f"template parameter {name}={value} is outside its {bound} {spec[bound]}")
    return int(number) if number.is_integer() else number


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= _references(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add((arg.split(".", 1) if isinstance(arg, str) else arg)[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.split(".", 1)[0].strip() for m in _SUB_VAR.findall(text)}
                if not isinstance(arg, str):
                    found |= _references(arg[1])
            else:
                found |= _references(arg)
    return found


def _order(resources: dict[str, dict]) -> list[str]:
    """Topological order (dependencies first: DLQs before their source queues, queue before bucket)."""
    deps = {}
    for name, spec in resources.items():
        depends = spec.get("DependsOn") or []
        depends = [depends] if isinstance(depends, str) else list(depends)
        deps[name] = {d for d in _references(spec.get("Properties", {})) | set(depends) if d in resources}
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise ProvisionError(f"dependency cycle at {name}")
        visiting.add(name)
        for dep in sorted(deps[name]):
            visit(dep)
        visiting.discard(name)
        ordered.append(name)

    for name in resources:  # template order among independent resources
        visit(name)
    return ordered


# ---- provisioner ----------------------------------------------------------------------------

def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""


class Provisioner:
    def __init__(self, endpoint_url: str | None, region: str, *, account_id: str = aws.ACCOUNT_ID,
                 visibility_timeout: int | None = None, parameters: dict[str, Any] | None = None,
                 template: dict | None = None, logger: Callable[[str], None] | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.template = template if template is not None else json.loads(TEMPLATE_PATH.read_text())
        self.resolver = Resolver(self.template, region, account_id, parameters)
        self.visibility_timeout = visibility_timeout
        self.changes: list[str] = []
        self._log = logger or log.info
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws.client(service, self.endpoint_url, self.region)
        return self._clients[service]

    def warm_up(self) -> None:
        """Build the clients (botocore loads its service models) before the endpoint is up."""
        for service in ("dynamodb", "sqs", "s3"):
            self.client(service)

    def changed(self, what: str) -> None:
        self.changes.append(what)
        self._log(what)

    def run(self) -> dict[str, Any]:
        resources = self.template.get("Resources") or {}
        handlers = {"AWS::DynamoDB::Table": self.table, "AWS::S3::Bucket": self.bucket,
                    "AWS::SQS::Queue": self.queue, "AWS::Events::EventBus": self.event_bus}
        for name in _order(resources):
            spec = resources[name]
            handler = handlers.get(spec.get("Type"))
            if handler is None:
                log.debug(f"skipped {spec.get('Type')} {name} (not needed locally)")
                continue
            handler(name, self.resolver.resolve(spec.get("Properties") or {}))
        outputs = {}
        for key, spec in (self.template.get("Outputs") or {}).items():
            # Outputs of what only exists on AWS (RestAPI from `chalice package`, secrets) are left out.
            missing = sorted(r for r in _references(spec["Value"]) if r not in self.resolver.refs
                             and r not in self.resolver.pseudo and r not in self.resolver.parameters)
            if missing:
                log.debug(f"skipped output {key} (refers to {', '.join(missing)}, not created locally)")
                continue
            outputs[key] = self.resolver.resolve(spec["Value"])
        return outputs

    # -- DynamoDB ---------------------------------------------------------------------------
    def table(self, name: str, props: dict) -> None:
        ddb = self.client("dynamodb")
        table_name = props.get("TableName") or f"avatar-creator-local-{name}"
        try:
            desc = ddb.describe_table(TableName=table_name)["Table"]
        except Exception as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            desc = None
        if desc is None:
            kwargs: dict[str, Any] = {
                "TableName": table_name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode", "PROVISIONED"),
            }
            if kwargs["BillingMode"] == "PROVISIONED":
                kwargs["ProvisionedThroughput"] = props.get("ProvisionedThroughput") or {
                    "ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                if props.get(key):
                    kwargs[key] = props[key]
            stream = props.get("StreamSpecification")
            if stream:
                kwargs["StreamSpecification"] = {"StreamEnabled": True,
                                                 "StreamViewType": stream["StreamViewType"]}
            ddb.create_table(**kwargs)
            ddb.get_waiter("table_exists").wait(TableName=table_name,
                                                WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
            self.changed(f"created table {table_name}")
        else:
            existing = {i["IndexName"] for i in desc.get("GlobalSecondaryIndexes", [])}
            for gsi in props.get("GlobalSecondaryIndexes", []):
                if gsi["IndexName"] not in existing:
                    ddb.update_table(TableName=table_name, AttributeDefinitions=props["AttributeDefinitions"],
                                     GlobalSecondaryIndexUpdates=[{"Create": gsi}])
                    self.changed(f"added index {gsi['IndexName']} to table {table_name}")
            stream = props.get("StreamSpecification")
            current_stream = desc.get("StreamSpecification") or {}
            if stream and not (current_stream.get("StreamEnabled")
                               and current_stream.get("StreamViewType") == stream["StreamViewType"]):
                if current_stream.get("StreamEnabled"):  # another view type: off, then on again
                    ddb.update_table(TableName=table_name, StreamSpecification={"StreamEnabled": False})
                ddb.update_table(TableName=table_name, StreamSpecification={
                    "StreamEnabled": True, "StreamViewType": stream["StreamViewType"]})
                desc = ddb.describe_table(TableName=table_name)["Table"]
                self.changed(f"enabled the {stream['StreamViewType']} stream of table {table_name}")
            if desc["KeySchema"] != props["KeySchema"]:
                self._log(f"WARNING: table {table_name} has a different key schema than the template; "
                          f"delete the local data dir to recreate it")
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            current = ddb.describe_time_to_live(TableName=table_name).get("TimeToLiveDescription", {})
            if not (current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
                    and current.get("AttributeName") == ttl["AttributeName"]):
                ddb.update_time_to_live(TableName=table_name, TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"], "Enabled": True})
                self.changed(f"enabled TTL on {table_name}.{ttl['AttributeName']}")
        # PointInTimeRecovery / SSESpecification: meaningless locally.
        self.resolver.refs[name] = table_name
        self.resolver.attrs[name] = {
            "Arn": desc["TableArn"] if desc else f"arn:aws:dynamodb:{self.region}:"
                                                 f"{self.resolver.pseudo['AWS::AccountId']}:table/{table_name}"}
        if desc is None and props.get("StreamSpecification"):
            desc = ddb.describe_table(TableName=table_name)["Table"]
        if desc and desc.get("LatestStreamArn"):
            self.resolver.attrs[name]["StreamArn"] = desc["LatestStreamArn"]

    # -- EventBridge ------------------------------------------------------------------------
    def event_bus(self, name: str, props: dict) -> None:
        events = self.client("events")
        bus_name = props.get("Name") or f"avatar-creator-local-{name}"
        try:
            arn = events.describe_event_bus(Name=bus_name)["Arn"]
        except Exception as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
            self.changed(f"created event bus {bus_name}")
        self.resolver.refs[name] = bus_name
        self.resolver.attrs[name] = {"Arn": arn, "Name": bus_name}

    # -- SQS --------------------------------------------------------------------------------
    _QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
                         "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "KmsMasterKeyId",
                         "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled", "FifoQueue",
                         "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit")

    @staticmethod
    def _attr_str(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    @staticmethod
    def _same(key: str, want: str, have: str | None) -> bool:
        if have is None:
            return False
        if key in ("RedrivePolicy", "RedriveAllowPolicy"):
            try:
                a, b = json.loads(want), json.loads(have)
            except ValueError:
                return False
            return {k: str(v) for k, v in a.items()} == {k: str(v) for k, v in b.items()}
        return want.lower() == have.lower()

    def queue(self, name: str, props: dict) -> None:
        sqs = self.client("sqs")
        queue_name = props.get("QueueName") or f"avatar-creator-local-{name}"
        if props.get("FifoQueue") and not queue_name.endswith(".fifo"):
            queue_name += ".fifo"
        want = {k: self._attr_str(props[k]) for k in self._QUEUE_ATTRIBUTES if k in props}
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in props:
                want[key] = self._attr_str(props[key])
        if self.visibility_timeout is not None:
            want["VisibilityTimeout"] = str(int(self.visibility_timeout))
        try:
            url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        except Exception as exc:
            if _error_code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise
            url = None
        if url is None:
            url = sqs.create_queue(QueueName=queue_name, Attributes=want)["QueueUrl"]
            self.changed(f"created queue {queue_name}")
            have = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        else:
            have = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            diff = {k: v for k, v in want.items()
                    if k not in ("FifoQueue",) and not self._same(k, v, have.get(k))}
            if diff:
                sqs.set_queue_attributes(QueueUrl=url, Attributes=diff)
                self.changed(f"updated queue {queue_name}: {', '.join(sorted(diff))}")
        self.resolver.refs[name] = url
        self.resolver.attrs[name] = {"Arn": have["QueueArn"], "QueueName": queue_name, "QueueUrl": url}

    # -- S3 ---------------------------------------------------------------------------------
    def bucket(self, name: str, props: dict) -> None:
        s3 = self.client("s3")
        bucket = props.get("BucketName") or f"avatar-creator-local-{name.lower()}"
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception as exc:  # botocore ClientError 404
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            s3.create_bucket(**kwargs)
            self.changed(f"created bucket {bucket}")
        self.resolver.refs[name] = bucket
        self.resolver.attrs[name] = {"Arn": f"arn:aws:s3:::{bucket}", "DomainName": f"{bucket}.s3.amazonaws.com",
                                     "RegionalDomainName": f"{bucket}.s3.{self.region}.amazonaws.com"}
        self._bucket_cors(s3, bucket, props.get("CorsConfiguration"))
        self._bucket_lifecycle(s3, bucket, props.get("LifecycleConfiguration"))
        self._bucket_notifications(s3, bucket, props.get("NotificationConfiguration"))
        # PublicAccessBlock / BucketEncryption: AWS-side protections, nothing to emulate.

    def _bucket_cors(self, s3: Any, bucket: str, config: dict | None) -> None:
        if not config:
            return
        rules = []
        for rule in config.get("CorsRules", []):
            out = {"AllowedMethods": rule["AllowedMethods"], "AllowedOrigins": rule["AllowedOrigins"]}
            for key in ("AllowedHeaders", "ExposedHeaders"):
                if rule.get(key):
                    out[key if key != "ExposedHeaders" else "ExposeHeaders"] = rule[key]
            if "MaxAge" in rule:
                out["MaxAgeSeconds"] = int(rule["MaxAge"])
            if rule.get("Id"):
                out["ID"] = rule["Id"]
            rules.append(out)
        try:
            current = s3.get_bucket_cors(Bucket=bucket).get("CORSRules", [])
        except Exception as exc:
            if _error_code(exc) != "NoSuchCORSConfiguration":
                raise
            current = []
        if _canonical(current) != _canonical(rules):
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
            self.changed(f"set CORS on bucket {bucket}")

    def _bucket_lifecycle(self, s3: Any, bucket: str, config: dict | None) -> None:
        if not config:
            return
        rules = []
        for rule in config.get("Rules", []):
            out: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
            if rule.get("Id"):
                out["ID"] = rule["Id"]
            out["Filter"] = {"Prefix": rule.get("Prefix", "")}
            if "ExpirationInDays" in rule:
                out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
            if rule.get("AbortIncompleteMultipartUpload"):
                out["AbortIncompleteMultipartUpload"] = {
                    "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
            if "NoncurrentVersionExpirationInDays" in rule:
                out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
            rules.append(out)
        try:
            try:
                current = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
            except Exception as exc:
                if _error_code(exc) != "NoSuchLifecycleConfiguration":
                    raise
                current = []
            if _canonical(current) != _canonical(rules):
                s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
                self.changed(f"set lifecycle rules on bucket {bucket}")
        except Exception as exc:  # not every emulator has lifecycle rules; they only expire objects
            self._log(f"skipped lifecycle rules on bucket {bucket} ({type(exc).__name__}: {exc})")

    def _bucket_notifications(self, s3: Any, bucket: str, config: dict | None) -> None:
        if not config:
            return
        queues = []
        for item in config.get("QueueConfigurations", []):
            out: dict[str, Any] = {"QueueArn": item["Queue"], "Events": [item["Event"]]}
            key_rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules")
            if key_rules:
                out["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]}
                                                         for r in key_rules]}}
            queues.append(out)
        for other in ("TopicConfigurations", "LambdaConfigurations", "EventBridgeConfiguration"):
            if config.get(other):
                self._log(f"skipped {other} on bucket {bucket} (not used locally)")
        current = s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations", [])
        if _notification_key(current) == _notification_key(queues):
            return
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues},
            SkipDestinationValidation=True)
        self.changed(f"set notifications on bucket {bucket} -> "
                     f"{', '.join(q['QueueArn'].rsplit(':', 1)[-1] for q in queues)}")
        # Some emulators (moto) still send s3:TestEvent: take those out so they never pile up.
        for q in queues:
            self._drop_test_events(q["QueueArn"])

    def _drop_test_events(self, queue_arn: str) -> None:
        sqs = self.client("sqs")
        url = next((v["QueueUrl"] for v in self.resolver.attrs.values() if v.get("Arn") == queue_arn), None)
        if url is None:
            return
        for _ in range(5):
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=5).get("Messages", [])
            if not msgs:
                return
            others = []
            for m in msgs:
                try:
                    is_test = json.loads(m["Body"]).get("Event") == "s3:TestEvent"
                except (ValueError, AttributeError):
                    is_test = False
                if is_test:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                else:
                    others.append(m)
            for m in others:  # not ours: make it visible again at once
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            if others:
                return


def _canonical(value: Any) -> str:
    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items() if x not in (None, [], {}, "")}
        if isinstance(v, list):
            return sorted((norm(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True))
        return v

    return json.dumps(norm(value), sort_keys=True)


def _notification_key(configs: list[dict]) -> str:
    out = []
    for c in configs:
        rules = ((c.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []
        out.append({"arn": c["QueueArn"], "events": sorted(c.get("Events", [])),
                    "rules": sorted((r["Name"].lower(), r["Value"]) for r in rules)})
    return json.dumps(sorted(out, key=lambda x: json.dumps(x, sort_keys=True)), sort_keys=True)


# ---- public API ---------------------------------------------------------------------------

def provision(endpoint_url: str | None = None, region: str = aws.REGION, *, api_url: str | None = None,
              visibility_timeout: int | None = None, parameters: dict[str, Any] | None = None,
              template: dict | None = None, data_dir: str | os.PathLike | None = None,
              changes: list[str] | None = None, logger: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Create/converge the template's resources; return the resolved Outputs plus ApiUrl, AwsEndpoint
    and Region. With `data_dir`, also write them to <data_dir>/outputs.json. `changes`, when given,
    receives one line per change made (empty on a second run)."""
    prov = Provisioner(endpoint_url, region, visibility_timeout=visibility_timeout, parameters=parameters,
                       template=template, logger=logger)
    outputs = prov.run()
    outputs.update({"ApiUrl": api_url, "AwsEndpoint": endpoint_url, "Region": region})
    if changes is not None:
        changes.extend(prov.changes)
    if data_dir is not None:
        write_outputs(outputs, data_dir)
    return outputs


def write_outputs(outputs: dict[str, Any], data_dir: str | os.PathLike) -> Path:
    path = Path(data_dir) / "outputs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".outputs.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(outputs, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)  # readers never see a half-written file
    return path
