"""The packaged stack (`make package` output) deployed into ministack's CloudFormation.

What `aws cloudformation package` + `aws cloudformation deploy` do on AWS, against the local
emulator: upload the zips to a deployment bucket, point each CodeUri/ContentUri at its S3 copy,
create the stack from a template stored in S3 (the packaged template is close to the 51,200-byte
TemplateBody limit), wait for it, read its outputs. ministack applies the SAM transform
(aws-sam-translator in .venv-ministack), runs every function as a local Python 3.12 subprocess with
the layer on its path, serves API Gateway with the Lambda authorizer, and polls the queues for the
event source mappings. With AUTH=true it signs each function's calls with its execution role's
session and evaluates the role's policy on every S3/SQS/DynamoDB/Secrets Manager request, so a
function that needs a permission its policy lacks fails here as it would on AWS.

    python -m infra.packaged_stack build/prod      # make run-packaged: deploy, print URLs, wait for Ctrl-C
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from local import aws  # noqa: E402
from local.ministack import Ministack  # noqa: E402

DEPLOY_BUCKET = "avatar-creator-deployments"
DEFAULT_STACK = "avatar-creator-prod"
API_STAGE = "api"
_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS", "DELETE_COMPLETE",
           "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DeployError(RuntimeError):
    """The stack did not reach CREATE_COMPLETE; the message lists the failed resources and why."""


def local_artifacts(template: dict) -> dict[str, str]:
    """{logical id: local file} for every function/layer whose code is a path next to the template."""
    found = {}
    for name, resource in template.get("Resources", {}).items():
        prop = _CODE_PROPERTIES.get(resource.get("Type", ""))
        uri = (resource.get("Properties") or {}).get(prop) if prop else None
        if isinstance(uri, str) and not uri.startswith("s3://"):
            found[name] = uri
    return found


def with_s3_code(template: dict, uris: dict[str, str]) -> dict:
    """A copy of the template whose local CodeUri/ContentUri paths are replaced by `uris[path]`."""
    out = copy.deepcopy(template)
    for name, path in local_artifacts(template).items():
        resource = out["Resources"][name]
        resource["Properties"][_CODE_PROPERTIES[resource["Type"]]] = uris[path]
    return out


def upload_artifacts(s3: Any, build_dir: Path, paths: set[str], bucket: str = DEPLOY_BUCKET) -> dict[str, str]:
    """Upload each zip under a content-addressed key (as `cloudformation package` does, so a new
    build is new code); returns {local path: s3 uri}."""
    uris = {}
    for path in sorted(paths):
        data = (build_dir / path).read_bytes()
        key = f"{hashlib.sha256(data).hexdigest()[:16]}-{Path(path).name}"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        uris[path] = f"s3://{bucket}/{key}"
    return uris


def ensure_bucket(s3: Any, bucket: str = DEPLOY_BUCKET) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)


def deploy(endpoint_url: str, build_dir: str | os.PathLike, *, stack_name: str = DEFAULT_STACK,
           parameters: dict[str, str] | None = None, region: str = aws.REGION, timeout: float = 300.0) -> dict:
    """Deploy build_dir/sam.json into the CloudFormation at endpoint_url; returns the stack's outputs.
    Parameters without a default get the local stack's values (AllowedOrigins `*`: the emulator only)."""
    from local.provision import LOCAL_PARAMETERS

    parameters = {**LOCAL_PARAMETERS, **(parameters or {})}
    build_dir = Path(build_dir)
    from infra.stack_parameters import PARAMETER, USAGE_PARAMETER, resolve_for_emulator

    template = resolve_for_emulator(json.loads((build_dir / "sam.json").read_text()), parameters)
    for name in (PARAMETER, USAGE_PARAMETER):
        parameters.pop(name, None)  # now a number in the template itself
    s3 = aws.client("s3", endpoint_url, region)
    cfn = aws.client("cloudformation", endpoint_url, region)
    ensure_bucket(s3)
    uris = upload_artifacts(s3, build_dir, set(local_artifacts(template).values()))
    body = json.dumps(with_s3_code(template, uris), separators=(",", ":")).encode()
    key = f"{hashlib.sha256(body).hexdigest()[:16]}-{stack_name}.template.json"
    s3.put_object(Bucket=DEPLOY_BUCKET, Key=key, Body=body)
    cfn.create_stack(StackName=stack_name, TemplateURL=f"https://s3.amazonaws.com/{DEPLOY_BUCKET}/{key}",
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    return wait_for_stack(cfn, stack_name, timeout)


def wait_for_stack(cfn: Any, stack_name: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status in _DONE:
            return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        if status in _FAILED:
            raise DeployError(f"stack {stack_name} is {status}: {stack.get('StackStatusReason', '')}\n"
                              + failed_resources(cfn, stack_name))
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {status} after {timeout:.0f}s\n"
                              + failed_resources(cfn, stack_name))
        time.sleep(0.2)


def failed_resources(cfn: Any, stack_name: str) -> str:
    events = cfn.describe_stack_events(StackName=stack_name).get("StackEvents", [])
    lines = [f"  {e['LogicalResourceId']} ({e.get('ResourceType')}): {e.get('ResourceStatusReason', '')}"
             for e in events if str(e.get("ResourceStatus", "")).endswith("FAILED")]
    return "\n".join(lines) or "  (no failed resource events)"


def apply_gateway_responses(endpoint_url: str, stack_name: str, rest_api_id: str, stage: str = API_STAGE,
                            region: str = aws.REGION) -> list[str]:
    """Put the template's gateway responses on the deployed API and redeploy its stage.

    Needed on ministack 1.5.33 only: SAM writes `GatewayResponses` into the RestApi's OpenAPI body
    as `x-amazon-apigateway-gateway-responses`, which API Gateway applies on import; ministack's
    import (services/apigateway_v1.py `_import_rest_api`) creates resources, methods, integrations
    and authorizers from the body and ignores that extension, so its 401/403/404 answers keep the
    built-in bodies. This reads the extension from the stack's processed template and sends each
    entry through PutGatewayResponse, then CreateDeployment (gateway responses take effect on a
    deployment, as on AWS). Returns the response types applied; none when the emulator already
    has them (a later ministack that imports the extension)."""
    cfn = aws.client("cloudformation", endpoint_url, region)
    apigw = aws.client("apigateway", endpoint_url, region)
    body = cfn.get_template(StackName=stack_name, TemplateStage="Processed")["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    wanted: dict[str, dict] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ApiGateway::RestApi":
            wanted.update(resource["Properties"].get("Body", {}).get("x-amazon-apigateway-gateway-responses", {}))
    present = {item["responseType"] for item in apigw.get_gateway_responses(restApiId=rest_api_id)["items"]
               if not item.get("defaultResponse", True)}
    if not wanted or set(wanted) <= present:
        return []
    for kind, spec in wanted.items():
        kwargs = {k: spec[k] for k in ("statusCode", "responseParameters", "responseTemplates") if k in spec}
        apigw.put_gateway_response(restApiId=rest_api_id, responseType=kind, **kwargs)
    apigw.create_deployment(restApiId=rest_api_id, stageName=stage,
                            description="gateway responses from the template (ministack import gap)")
    return sorted(wanted)


class PackagedStack:
    """ministack (all services, IAM enforced unless auth=False) with the packaged stack deployed.

        stack = PackagedStack("build/prod", tmp_dir).start()
        stack.request("POST", "/projects", {"name": "x"}, token=stack.token("alice"))
        stack.stop()
    """

    def __init__(self, build_dir: str | os.PathLike, data_dir: str | os.PathLike, *, port: int | None = None,
                 stack_name: str = DEFAULT_STACK, auth: bool = True,
                 parameters: dict[str, str] | None = None) -> None:
        self.build_dir = Path(build_dir)
        self.stack_name = stack_name
        self.parameters = parameters
        env = {"AWS_ACCESS_KEY_ID": aws.ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": aws.SECRET_ACCESS_KEY,
               "AUTH": "true" if auth else "false"}
        self.ministack = Ministack(data_dir, port or free_port(), services=None, extra_env=env)
        self.outputs: dict[str, str] = {}
        self.patched_gateway_responses: list[str] = []

    @property
    def endpoint_url(self) -> str:
        return self.ministack.endpoint_url

    def start(self, timeout: float = 300.0) -> "PackagedStack":
        self.ministack.start()
        try:
            self.outputs = deploy(self.endpoint_url, self.build_dir, stack_name=self.stack_name,
                                  parameters=self.parameters, timeout=timeout)
            self.patched_gateway_responses = apply_gateway_responses(self.endpoint_url, self.stack_name,
                                                                     self.outputs["RestAPIId"])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.ministack.stop()

    def log_tail(self, lines: int = 60) -> str:
        return self.ministack.log_tail(lines)

    def function_logs(self, limit: int = 200) -> str:
        """The functions' log lines (CloudWatch Logs on ministack), oldest first: for failure messages."""
        logs = self.client("logs")
        lines = []
        for group in logs.describe_log_groups().get("logGroups", []):
            name = group["logGroupName"]
            for event in logs.filter_log_events(logGroupName=name, limit=limit).get("events", []):
                lines.append((event["timestamp"], f"{name}: {event['message'].rstrip()}"))
        return "\n".join(line for _, line in sorted(lines)[-limit:])

    # ---- clients of the deployed stack -------------------------------------------------------
    def client(self, service: str) -> Any:
        return aws.client(service, self.endpoint_url)

    @property
    def api_base(self) -> str:
        """The stage's URL on ministack (on AWS: the ApiUrl output)."""
        return f"{self.endpoint_url}/restapis/{self.outputs['RestAPIId']}/{API_STAGE}/_user_request_"

    def jwt_secret(self) -> str:
        return self.client("secretsmanager").get_secret_value(SecretId=self.outputs["JwtSecretArn"])["SecretString"]

    def token(self, user: str = "alice", **kwargs: Any) -> str:
        from chalicelib.auth import issue_token

        return issue_token(user, secret=self.jwt_secret(), **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", nargs="?", default=str(ROOT / "build" / "prod"))
    parser.add_argument("--data-dir", default=str(ROOT / ".local-data" / "packaged"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_AWS_PORT") or 4566))
    parser.add_argument("--no-auth", action="store_true", help="do not enforce IAM (AUTH=false)")
    args = parser.parse_args(argv)
    if not (Path(args.build_dir) / "sam.json").exists():
        print(f"ERROR: no {args.build_dir}/sam.json: run `make package` first", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    # A fresh emulator each time: CreateStack, not an update of yesterday's stack.
    import shutil

    shutil.rmtree(args.data_dir, ignore_errors=True)
    stack = PackagedStack(args.build_dir, args.data_dir, port=args.port, auth=not args.no_auth)
    try:
        stack.start()
    except DeployError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"\n  Packaged stack {stack.stack_name} deployed in {time.monotonic() - started:.1f}s "
              f"(IAM {'enforced' if not args.no_auth else 'not enforced'})\n"
              f"  API           {stack.api_base}/api/apps/avatar-creator/health\n"
              f"  AWS endpoint  {stack.endpoint_url}  (keys test/test)\n"
              f"  Token         Bearer {stack.token('alice')}\n"
              f"  Outputs       {json.dumps(stack.outputs, indent=2)}\n"
              f"  Stop          Ctrl-C\n", flush=True)
        while not stop.wait(0.5):
            if not stack.ministack.running():
                print(f"ERROR: ministack exited:\n{stack.log_tail()}", file=sys.stderr)
                return 1
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
