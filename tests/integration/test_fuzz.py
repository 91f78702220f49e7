"""Schemathesis against the served /openapi.json on the local stack, authenticated as a user:
every operation, FUZZ_EXAMPLES generated cases each (default 10 in `make test`; `make fuzz` runs
more). Checks: no 5xx, responses match the documented schemas and status codes, every 4xx has the
service's error shape (all of Schemathesis' checks except positive data acceptance, see below). (Schemathesis' own pytest plugin does not run under pytest 9, so its
strategies are driven by Hypothesis directly.)"""
from __future__ import annotations

import os
import uuid

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))


def test_every_operation_holds_under_generated_requests(local_stack):
    schema = schemathesis.openapi.from_url(local_stack.url("/api/apps/avatar-creator/openapi.json"))
    headers = {"Authorization": f"Bearer {local_stack.token(f'fuzz-{uuid.uuid4().hex[:8]}')}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    seen: dict[str, int] = {}
    server_errors: list[str] = []

    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(headers=headers, base_url=local_stack.base_url)
            label = f"{case.method} {case.path}"
            seen[label] = seen.get(label, 0) + 1
            if response.status_code >= 500:
                server_errors.append(f"{label} → {response.status_code}: {response.text[:300]}")
                return
            if 400 <= response.status_code < 500 and response.text.startswith("<!doctype html>"):
                # The public share page answers for browsers: unknown, revoked and throttled are one page.
                assert case.path.endswith("/s/{token}") and 'name="robots" content="noindex' in response.text, label
            elif 400 <= response.status_code < 500:
                error = response.json()["error"]
                assert isinstance(error["code"], str) and isinstance(error["message"], str) and "details" in error
            # Schema-valid but semantically refused input is a correct 4xx (an impossible clock time,
            # an event from the far future): the schema cannot say everything the rules check.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
    assert not server_errors, server_errors
    assert len(seen) == len(operations)
    print(f"fuzz: {sum(seen.values())} requests over {len(seen)} operations, 0 server errors")
