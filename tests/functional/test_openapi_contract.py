"""The API contract as other teams consume it: the served /openapi.json is valid OpenAPI 3.1, and a
TypeScript client generated from it (openapi-typescript, the way Lumiku's Node apps will use it)
type-checks tests/contract/client.ts, a script that calls every route.

Needs the pinned npm packages of tests/contract (`make contract-deps`, part of `make test`)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "tests" / "contract"
BIN = CONTRACT / "node_modules" / ".bin"
CLIENT = CONTRACT / "client.ts"


@pytest.fixture(scope="module")
def spec(monkeypatch_module) -> dict:
    """The document GET /openapi.json serves (chalicelib.api.system builds it once per process)."""
    monkeypatch_module.setenv("STAGE", "test")
    from app import app  # noqa: F401 — registers the blueprints the document is built from
    from chalicelib.api import system

    return json.loads(json.dumps(system._spec()))  # exactly what goes over the wire


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def operations(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item}


def called_operations(script: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every `client.METHOD(`path`…` call in the script, with `${API}` expanded."""
    prefix = re.search(r'const API = "([^"]+)";', script)
    calls = re.findall(r"client\.(GET|POST|PUT|PATCH|DELETE)\(\s*[`\"']([^`\"']+)[`\"']", script)
    return {(method, path.replace("${API}", prefix.group(1) if prefix else "${API}")) for method, path in calls}


def npm_bin(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{path} is missing: run `make contract-deps` (npm ci in tests/contract)"
    return str(path)


def test_the_served_document_is_valid_openapi_3_1(spec):
    from openapi_spec_validator import OpenAPIV31SpecValidator

    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == []


def test_no_default_contradicts_its_schema(spec):
    """pydantic writes `default: null` on optional-but-not-nullable fields (AvatarUpdate.name);
    the generator drops such defaults (openapi-spec-validator checks the rest)."""
    name = spec["components"]["schemas"]["AvatarUpdate"]["properties"]["name"]
    assert name["type"] == "string" and "default" not in name
    assert "name" not in spec["components"]["schemas"]["AvatarUpdate"].get("required", [])


def test_defaults_are_checked_against_their_own_schema_wherever_they_are():
    from chalicelib.api.openapi import _drop_defaults_the_schema_refuses

    spec = {"components": {"schemas": {
        "Kind": {"type": "string", "enum": ["a", "b"]},
        "M": {"type": "object", "properties": {
            "name": {"type": "string", "default": None},                          # refused: dropped
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},  # kept
            "count": {"type": "integer", "default": True},                        # a bool is no integer
            "kind": {"$ref": "#/components/schemas/Kind", "default": "c"},       # not in the enum
            "size": {"type": "integer", "default": 3},                            # kept
            "default": {"type": "string"},                                         # a field named default
        }},
    }}, "paths": {"/x": {"get": {
        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "default": "ten"}}],
        "responses": {"default": {"description": "Error"}},
    }}}}
    _drop_defaults_the_schema_refuses(spec)
    props = spec["components"]["schemas"]["M"]["properties"]
    assert {name for name, prop in props.items() if "default" in prop} == {"note", "size"}
    assert props["default"] == {"type": "string"}
    assert "default" not in spec["paths"]["/x"]["get"]["parameters"][0]["schema"]
    assert spec["paths"]["/x"]["get"]["responses"] == {"default": {"description": "Error"}}


def test_the_typescript_script_calls_every_route_of_the_document(spec):
    missing = operations(spec) - called_operations(CLIENT.read_text(encoding="utf-8"))
    assert not missing, f"tests/contract/client.ts does not call: {sorted(missing)} — add a call for each new route"


def test_the_coverage_check_reads_template_and_plain_paths():
    script = 'const API = "/api/x";\nclient.GET(`${API}/a/{id}`, {});\nclient.POST("/api/x/b");\n'
    assert called_operations(script) == {("GET", "/api/x/a/{id}"), ("POST", "/api/x/b")}


def type_check(spec: dict, script: Path, work: Path) -> subprocess.CompletedProcess:
    """openapi-typescript over the document, then `tsc --noEmit` over the script and those types."""
    assert shutil.which("node"), "node is not installed (make contract-deps installs npm and node)"
    (work / "openapi.json").write_text(json.dumps(spec), encoding="utf-8")
    # --default-non-nullable false: by default openapi-typescript makes every field that has a
    # default *required*, which is wrong for request bodies (a default is what the server uses when
    # the field is left out). Lumiku's apps must generate their client with the same flag (README).
    generated = subprocess.run([npm_bin("openapi-typescript"), "openapi.json", "--default-non-nullable", "false",
                                "-o", "api.d.ts"], cwd=work, capture_output=True, text=True, timeout=120)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    shutil.copy(script, work / "client.ts")
    (work / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {
            "strict": True, "noEmit": True, "target": "ES2022", "module": "ESNext", "moduleResolution": "Bundler",
            "lib": ["ES2022", "DOM"], "types": [], "noUnusedLocals": True,
            # The script is checked outside the repository: its one runtime package comes from tests/contract.
            "paths": {"openapi-fetch": [str(CONTRACT / "node_modules" / "openapi-fetch")]},
        },
        "files": ["client.ts", "api.d.ts"],
    }), encoding="utf-8")
    return subprocess.run([npm_bin("tsc"), "-p", "tsconfig.json"], cwd=work, capture_output=True, text=True,
                          timeout=180)


def test_a_typescript_client_generated_from_the_document_type_checks_the_script(spec, tmp_path):
    checked = type_check(spec, CLIENT, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_type_check_refuses_a_body_without_a_required_field(spec, tmp_path):
    """The check above can fail: the same script leaving out a field ProjectCreate requires is refused."""
    script = CLIENT.read_text(encoding="utf-8")
    broken = script.replace('body: { name: "Campaign", description: "Spring" }', 'body: { description: "Spring" }')
    assert broken != script
    (tmp_path / "broken.ts").write_text(broken, encoding="utf-8")
    (tmp_path / "work").mkdir()
    checked = type_check(spec, tmp_path / "broken.ts", tmp_path / "work")
    assert checked.returncode != 0 and "Property 'name' is missing" in checked.stdout, checked.stdout + checked.stderr
