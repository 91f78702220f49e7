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


def _scaling(template: dict) -> dict:
    return template["Resources"][FUNCTION]["Properties"]["Events"][SOURCE]["Properties"]["ScalingConfig"]


def parameterize(template: dict) -> dict:
    """A copy whose generation worker cap is the `GenerationMaxConcurrency` parameter."""
    out = copy.deepcopy(template)
    out.setdefault("Parameters", {})[PARAMETER] = dict(DEFINITION)
    _scaling(out)["MaximumConcurrency"] = {"Ref": PARAMETER}
    return out


def resolve_for_emulator(template: dict, parameters: dict[str, str]) -> dict:
    """A copy with the parameter's value as a number (ministack compares it as one)."""
    out = copy.deepcopy(template)
    if PARAMETER in out.get("Parameters", {}):
        value = parameters.get(PARAMETER, out["Parameters"][PARAMETER]["Default"])
        _scaling(out)["MaximumConcurrency"] = int(value)
        del out["Parameters"][PARAMETER]
    return out


def problems(template: dict) -> list[str]:
    found = []
    if _scaling(template).get("MaximumConcurrency") != {"Ref": PARAMETER}:
        found.append(f"{FUNCTION}'s MaximumConcurrency is not the {PARAMETER} parameter (run infra.stack_parameters)")
    if template.get("Parameters", {}).get(PARAMETER, {}).get("Default") != str(GENERATION_MAX_CONCURRENCY):
        found.append(f"{PARAMETER}'s default is not app.py's GENERATION_MAX_CONCURRENCY ({GENERATION_MAX_CONCURRENCY})")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "build/prod") / "sam.json"
    path.write_text(json.dumps(parameterize(json.loads(path.read_text())), indent=2) + "\n")
    print(f"{path}: {FUNCTION}'s MaximumConcurrency is the {PARAMETER} parameter (default {GENERATION_MAX_CONCURRENCY})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
