"""Stack parameters the packaged template takes where Chalice can only write a constant.

    python -m infra.stack_parameters build/prod      (run by scripts/package.sh after `chalice package`)

`@app.on_sqs_message(maximum_concurrency=…)` must be a constant at import, and infra/resources.json
keeps the same literal because ministack's event source poller compares `MaximumConcurrency` as a
number (a `Ref` resolves to a string there and stops every poller). So the package is where the
generation worker's cap becomes the stack parameter `GenerationMaxConcurrency` (default: app.py's
constant), and `infra.packaged_stack` puts the number back before deploying into ministack.

Choosing it (docs/deploy.md, "Generation concurrency"): every running job holds one provider request
in flight, so the cap is what the provider allows, with headroom for retries —
    GenerationMaxConcurrency = floor(0.8 × provider requests allowed in flight)
    (a rate limit of R requests/min at t s per image allows R/60 × t in flight;
     a dedicated endpoint of k replicas taking b concurrent requests each allows k × b)
and it is only worth raising while the demand needs it: peak generations/s × t s per image.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from chalicelib.config import GENERATION_MAX_CONCURRENCY

PARAMETER = "GenerationMaxConcurrency"
FUNCTION, SOURCE = "GenerationWorker", "GenerationWorkerSqsEventSource"
DEFINITION = {
    "Type": "Number",
    "Default": str(GENERATION_MAX_CONCURRENCY),
    "MinValue": "2",  # Lambda's minimum for an SQS event source's MaximumConcurrency
    "MaxValue": "1000",  # Lambda's default account concurrency: ask for more first (docs/scaling.md)
    "Description": "Generation jobs running at once (the generation worker's SQS MaximumConcurrency). Each holds one "
                   "provider request in flight: set floor(0.8 x the requests the provider allows in flight) — a rate "
                   "limit of R/min at t s per image allows R/60 x t; a dedicated endpoint of k replicas x b concurrent "
                   "requests allows k x b. Needed: peak generations/s x seconds per image (docs/deploy.md).",
}
# The usage worker's cap: its default stays infra/resources.json's literal (the local stack's).
USAGE_PARAMETER = "UsageMaxConcurrency"
USAGE_FUNCTION, USAGE_SOURCE = "UsageWorker", "UsageWorkerSqsEventSource"
USAGE_DESCRIPTION = ("Usage-event batches processed at once (the usage worker's SQS MaximumConcurrency). A worker "
                     "drains ~30 events/s when its batches mix users, far more when they are one user's: set peak "
                     "usage events/s / 30 (10 at 1M users, 80 at 10M; docs/scaling.md).")


def _scaling(template: dict, function: str = FUNCTION, source: str = SOURCE) -> dict:
    return template["Resources"][function]["Properties"]["Events"][source]["Properties"]["ScalingConfig"]


def _specs(template: dict) -> list[tuple[str, str, str, dict]]:
    """(parameter, function, event source, definition) of every cap the package makes a parameter."""
    specs = [(PARAMETER, FUNCTION, SOURCE, dict(DEFINITION))]
    if USAGE_FUNCTION in template.get("Resources", {}):
        current = _scaling(template, USAGE_FUNCTION, USAGE_SOURCE).get("MaximumConcurrency")
        default = (template.get("Parameters", {}).get(USAGE_PARAMETER, {}).get("Default")
                   if isinstance(current, dict) else str(current))
        specs.append((USAGE_PARAMETER, USAGE_FUNCTION, USAGE_SOURCE,
                      {"Type": "Number", "Default": default, "MinValue": "2", "MaxValue": "1000",
                       "Description": USAGE_DESCRIPTION}))
    return specs


def parameterize(template: dict) -> dict:
    """A copy whose worker caps are the `GenerationMaxConcurrency` / `UsageMaxConcurrency` parameters."""
    out = copy.deepcopy(template)
    for name, function, source, definition in _specs(template):
        out.setdefault("Parameters", {})[name] = definition
        _scaling(out, function, source)["MaximumConcurrency"] = {"Ref": name}
    return out


def resolve_for_emulator(template: dict, parameters: dict[str, str]) -> dict:
    """A copy with each parameter's value as a number (ministack compares it as one)."""
    out = copy.deepcopy(template)
    for name, function, source, _ in _specs(template):
        if name in out.get("Parameters", {}):
            value = parameters.get(name, out["Parameters"][name]["Default"])
            _scaling(out, function, source)["MaximumConcurrency"] = int(value)
            del out["Parameters"][name]
    return out


def problems(template: dict) -> list[str]:
    found = []
    for name, function, source, _ in _specs(template):
        if _scaling(template, function, source).get("MaximumConcurrency") != {"Ref": name}:
            found.append(f"{function}'s MaximumConcurrency is not the {name} parameter (run infra.stack_parameters)")
    if template.get("Parameters", {}).get(PARAMETER, {}).get("Default") != str(GENERATION_MAX_CONCURRENCY):
        found.append(f"{PARAMETER}'s default is not app.py's GENERATION_MAX_CONCURRENCY ({GENERATION_MAX_CONCURRENCY})")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "build/prod") / "sam.json"
    path.write_text(json.dumps(parameterize(json.loads(path.read_text())), indent=2) + "\n")
    print(f"{path}: the generation and usage workers' MaximumConcurrency are the {PARAMETER} and "
          f"{USAGE_PARAMETER} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
