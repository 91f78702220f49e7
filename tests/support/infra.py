"""Helpers for the infrastructure tests: the resource definition, the Chalice config and policy
files, and which Lambda functions (with which logical ids) `chalice package` makes of app.py."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "infra" / "resources.json"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
RUNTIME = "python3.12"


@dataclass(frozen=True)
class Function:
    name: str                 # Chalice's function name (config key, policy file)
    logical_id: str           # its resource in the packaged template
    queue: str | None = None  # the SQS queue it consumes, by its name in the local stack (see queues_by_name)


def load_resources() -> dict:
    return json.loads(RESOURCES.read_text())


def load_chalice_config() -> dict:
    return json.loads(CHALICE_CONFIG.read_text())


def logical_id(function_name: str) -> str:
    """Chalice's naming in `chalice package`: snake_case → CamelCase, the API is special."""
    if function_name == "api_handler":
        return "APIHandler"
    return "".join(part.capitalize() for part in function_name.split("_"))


def app_functions() -> list[Function]:
    """Every Lambda function `chalice package` generates for app.py."""
    from app import app

    found = [Function("api_handler", "APIHandler")] if app.routes else []
    found += [Function(a.name, logical_id(a.name)) for a in app.builtin_auth_handlers]
    found += [Function(e.name, logical_id(e.name), sqs_queue_name(e)) for e in app.event_sources]
    found += [Function(f.name, logical_id(f.name)) for f in app.pure_lambda_functions]
    return found


def sqs_queue_name(event_source: Any) -> str | None:
    """The queue an `on_sqs_message` handler names: its placeholder ARN ends in the local stack's name
    of the queue (chalicelib/config.py), which the package replaces by the template's queue."""
    arn = getattr(event_source, "queue_arn", None)
    return arn.rsplit(":", 1)[-1] if arn else getattr(event_source, "queue", None)


def policy_file(function_name: str) -> Path | None:
    entry = load_chalice_config().get("lambda_functions", {}).get(function_name, {})
    name = entry.get("iam_policy_file")
    return ROOT / ".chalice" / name if name else None


def stack_name_of(value: Any, stack_name: str) -> Any:
    """A name property as a stack called `stack_name` would resolve it (only `${AWS::StackName}` in Fn::Sub)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"].replace("${AWS::StackName}", stack_name)
    return value


def queues_by_name(template: dict, stack_name: str = "avatar-creator") -> dict[str, tuple[str, dict]]:
    """{QueueName: (logical id, properties)} for the template's SQS queues, named as in a stack called
    `stack_name` (the local stack's, by default)."""
    return {stack_name_of(r["Properties"]["QueueName"], stack_name): (lid, r["Properties"])
            for lid, r in template["Resources"].items() if r.get("Type") == "AWS::SQS::Queue"}


def statements(policy: dict) -> list[dict]:
    found = policy.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def references(value: Any) -> Iterator[str]:
    """Logical ids a value refers to through Ref, Fn::GetAtt or ${...} in Fn::Sub."""
    if isinstance(value, list):
        for v in value:
            yield from references(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref":
                yield arg
            elif key == "Fn::GetAtt":
                yield (arg.split(".", 1) if isinstance(arg, str) else arg)[0]
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                for name in re.findall(r"\$\{([^}!][^}]*)\}", text):
                    if not name.startswith("AWS::"):
                        yield name.split(".", 1)[0]
                if not isinstance(arg, str):
                    yield from references(arg[1])
            else:
                yield from references(arg)


def resource_texts(resource: Any) -> list[str]:
    """A policy statement's Resource entries as text (`${UploadBucket}` kept symbolic), for matching."""
    out = []
    for item in as_list(resource):
        if isinstance(item, str):
            out.append(item)
        elif "Fn::Sub" in item:
            out.append(item["Fn::Sub"] if isinstance(item["Fn::Sub"], str) else item["Fn::Sub"][0])
        elif "Fn::GetAtt" in item:
            arg = item["Fn::GetAtt"]
            out.append("GetAtt:" + (arg if isinstance(arg, str) else ".".join(arg)))
        elif "Ref" in item:
            out.append("Ref:" + item["Ref"])
        else:
            out.append(json.dumps(item, sort_keys=True))
    return out


_merged: dict[str, dict] = {}


def merged_template(stage: str) -> dict:
    """What `make package STAGE=<stage>` writes to sam.json, without building the zips (~1 s, no
    network): Chalice's own SAM generator for app.py and that stage of .chalice/config.json, merged
    with infra/resources.json by Chalice's own merger (`--merge-template`). CodeUri/ContentUri are
    left as Chalice's build placeholders."""
    import os

    if stage not in _merged:
        from chalice.cli.factory import CLIFactory
        from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
        from chalice.package import SAMTemplateGenerator, TemplateDeepMerger

        # As scripts/package.sh: botocore wants a region and credentials to exist, never a real profile.
        dummy = {"AWS_ACCESS_KEY_ID": "packaging", "AWS_SECRET_ACCESS_KEY": "packaging",
                 "AWS_DEFAULT_REGION": "us-east-1"}
        saved = {k: os.environ.get(k) for k in [*dummy, "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
        os.environ.update(dummy)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        try:
            factory = CLIFactory(str(ROOT))
            config = factory.create_config_obj(chalice_stage_name=stage)
            graph = ApplicationGraphBuilder().build(config, stage)
            resources = DependencyBuilder().build_dependencies(graph)
            generated = SAMTemplateGenerator(config, factory.create_package_options()).generate(resources)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        merged = TemplateDeepMerger().merge(load_resources(), generated)
        _merged[stage] = json.loads(json.dumps(merged, default=str))  # the placeholders as text, as in a file
    return _merged[stage]


_built: dict[str, Path] = {}


def build_package(stage: str = "prod") -> Path:
    """`make package STAGE=<stage>` into build/test-<stage>, once per test session (~5 s with Chalice's
    cached layer, ~15 s on a fresh machine: pip downloads the Lambda wheels)."""
    import subprocess

    if stage not in _built:
        out = ROOT / "build" / f"test-{stage}"
        proc = subprocess.run(["make", "--no-print-directory", "package", f"STAGE={stage}", f"BUILD_DIR={out}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise AssertionError(f"make package failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        _built[stage] = out
    return _built[stage]


def elf_needed(data: bytes) -> list[str]:
    """DT_NEEDED entries of a 64-bit little-endian ELF shared object (what the loader must find)."""
    import struct

    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 little-endian file"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    SHT_DYNAMIC, DT_NEEDED = 6, 1
    needed = []
    for _name, sh_type, _flags, _addr, offset, size, link, *_ in sections:
        if sh_type != SHT_DYNAMIC:
            continue
        strtab_offset = sections[link][4]
        for pos in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == DT_NEEDED:
                end = data.index(b"\0", strtab_offset + value)
                needed.append(data[strtab_offset + value:end].decode())
    return needed
