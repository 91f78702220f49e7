"""`python -m infra.seed` — load the preset gallery and persona examples (data/*.v1.json) into a stack.

Idempotent: unchanged entries are left alone, changed ones rewritten (usage counters kept), removed
ones deleted, and a preview is rendered for each preset whose look changed — with the offline
provider on the local stack, with FLUX when HF_TOKEN or FLUX_ENDPOINT_URL is set.

    python -m infra.seed --outputs .local-data/outputs.json      # a local stack (make run does this)
    python -m infra.seed --stack avatar-creator-prod             # a deployed stack (AWS credentials)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESETS_FILE = ROOT / "data" / "presets.v1.json"
PERSONAS_FILE = ROOT / "data" / "persona-examples.v1.json"


def load_documents() -> tuple[dict, dict]:
    return json.loads(PRESETS_FILE.read_text()), json.loads(PERSONAS_FILE.read_text())


def preview_renderer(provider):
    """render(entry) -> image bytes: the preset drawn by the configured generation provider."""
    from chalicelib.generation.prompts import build_prompt
    from chalicelib.generation.providers import GenerationRequest

    def render(entry: dict) -> bytes:
        fields = {**(entry.get("persona") or {}), **(entry.get("attributes") or {}), "prompt": entry["prompt"]}
        built = build_prompt(fields)
        return provider.generate(GenerationRequest(
            prompt=built.prompt, negative_prompt=built.negative_prompt, width=512, height=640,
            seed=zlib.crc32(entry["id"].encode()), label=entry["name"]))  # same preview on every machine

    return render


def seed_configured_stack(*, with_previews: bool = True):
    """Seed the stack the environment points at (TABLE_NAME, UPLOAD_BUCKET, AWS_ENDPOINT_URL…)."""
    from chalicelib.presets import service as presets
    from chalicelib.dependencies import get_deps

    deps = get_deps()
    presets_doc, personas_doc = load_documents()
    render = preview_renderer(deps.provider) if with_previews else None
    return presets.seed(presets_doc, personas_doc, storage=deps.storage, render=render,
                        thumb_size=deps.settings.thumbnail_size)


def _environment_from_outputs(outputs: dict) -> dict[str, str]:
    env = {"TABLE_NAME": outputs["TableName"], "UPLOAD_BUCKET": outputs["UploadBucket"]}
    if outputs.get("AwsEndpoint"):
        env.update({"AWS_ENDPOINT_URL": outputs["AwsEndpoint"], "AWS_ACCESS_KEY_ID": "test",
                    "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": outputs.get("Region", "us-east-1")})
    return env


def _stack_outputs(stack_name: str) -> dict:
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.seed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--outputs", help="outputs.json of a local stack")
    where.add_argument("--stack", help="CloudFormation stack name of a deployment")
    parser.add_argument("--no-previews", action="store_true", help="do not render preview images")
    args = parser.parse_args(argv)

    outputs = json.loads(Path(args.outputs).read_text()) if args.outputs else _stack_outputs(args.stack)
    os.environ.update(_environment_from_outputs(outputs))
    if args.outputs:
        os.environ["STAGE"] = "local"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    report = seed_configured_stack(with_previews=not args.no_previews)
    print(report.summary())
    for preset_id, reason in report.preview_failures.items():
        print(f"  preview of {preset_id} failed: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
