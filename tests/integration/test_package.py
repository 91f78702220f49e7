"""`make package STAGE=prod`: the SAM template Chalice writes, merged with infra/resources.json, and the
zips Lambda runs. Needs the package registry (pip downloads the Lambda wheels), no AWS account."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest

from infra.check_package import find_pillow, lambda_compatible, problems, site_packages_prefix, wheel_tags
from tests.support.infra import (
    ROOT,
    RUNTIME,
    app_functions,
    as_list,
    build_package,
    elf_needed,
    queues_by_name,
    references,
    statements,
)

# Shared objects the python3.12 Lambda image (Amazon Linux 2023) provides; anything else must be bundled.
SYSTEM_LIBS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libz.so.1",
               "libgcc_s.so.1", "libstdc++.so.6", "ld-linux-x86-64.so.2"}


@pytest.fixture(scope="module")
def build():
    return build_package("prod")


@pytest.fixture(scope="module")
def template(build):
    return json.loads((build / "sam.json").read_text())


def test_packaged_template_is_cfn_lint_clean(build):
    lint = subprocess.run([str(ROOT / ".venv" / "bin" / "cfn-lint"), str(build / "sam.json")],
                          capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert problems(build) == []


def test_every_function_runs_python312_with_the_shared_layer(template):
    functions = {lid: r["Properties"] for lid, r in template["Resources"].items()
                 if r["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == {f.logical_id for f in app_functions()}
    for props in functions.values():
        assert props["Runtime"] == RUNTIME
        assert props["Layers"] == [{"Ref": "ManagedLayer"}]
    assert template["Resources"]["ManagedLayer"]["Properties"]["CompatibleRuntimes"] == [RUNTIME]


def test_pillow_comes_from_a_manylinux_wheel_with_its_libraries_bundled(build):
    pillow = find_pillow(build)
    assert pillow is not None and pillow.archive == "layer-deployment.zip"
    assert re.search(r"PIL/_imaging\.cpython-312-x86_64-linux-gnu\.so$", pillow.extension)
    assert pillow.wheel_tags and all(re.fullmatch(r"cp312-cp312-manylinux_2_\d+_x86_64", t) for t in pillow.wheel_tags)
    # The newest glibc the wheel needs must not exceed the runtime's (Amazon Linux 2023: 2.34).
    assert min(int(re.search(r"manylinux_2_(\d+)_", t).group(1)) for t in pillow.wheel_tags) <= 34
    with zipfile.ZipFile(build / "layer-deployment.zip") as zf:
        root = site_packages_prefix()
        bundled = {name.rsplit("/", 1)[1] for name in pillow.bundled_libs}
        assert any(lib.startswith("libjpeg") for lib in bundled)
        for name in zf.namelist():
            if name.startswith(root + "PIL/") and name.endswith(".so"):
                missing = set(elf_needed(zf.read(name))) - bundled - SYSTEM_LIBS
                assert not missing, f"{name} needs {missing}: neither bundled nor in the Lambda image"


def test_every_distribution_in_the_layer_is_a_wheel_lambda_can_load(build):
    tags = wheel_tags(build)
    assert any(d.startswith("layer-deployment.zip:pydantic_core-") for d in tags)  # compiled code is in there
    assert {d: t for d, t in tags.items() if not any(lambda_compatible(x) for x in t)} == {}


@pytest.mark.parametrize("tag,loads", [
    ("py3-none-any", True),
    ("cp312-cp312-manylinux_2_28_x86_64", True),
    ("cp312-cp312-manylinux2014_x86_64", True),
    ("cp38-abi3-manylinux_2_17_x86_64", True),
    ("cp312-cp312-linux_x86_64", False),           # built from source on the packaging machine
    ("cp313-cp313-manylinux_2_28_x86_64", False),  # another CPython
    ("cp312-cp312-manylinux_2_39_x86_64", False),  # needs a newer glibc than Amazon Linux 2023's 2.34
    ("cp312-cp312-manylinux_2_28_aarch64", False),
    ("cp312-cp312-musllinux_1_2_x86_64", False),
])
def test_wheel_tags_are_judged_against_the_python312_lambda_image(tag, loads):
    assert lambda_compatible(tag) is loads


def test_the_packaged_pillow_decodes_and_thumbnails_a_jpeg(build, tmp_path):
    """The layer's own Pillow (not the venv's), in an isolated interpreter of the runtime's version."""
    with zipfile.ZipFile(build / "layer-deployment.zip") as zf:
        zf.extractall(tmp_path)
    site = tmp_path / site_packages_prefix()
    code = ("import io, sys; from PIL import Image, features; "
            "assert Image.__file__.startswith(sys.argv[1]), Image.__file__; "
            "b = io.BytesIO(); Image.new('RGB', (1200, 800), 'red').save(b, 'JPEG'); "
            "im = Image.open(io.BytesIO(b.getvalue())); im.thumbnail((300, 300)); "
            "print(im.size, features.check('jpg'), features.check('webp'))")
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}",
                          str(site)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(300, 200) True True"


def test_deployment_zip_holds_the_app_and_not_the_tooling(build):
    with zipfile.ZipFile(build / "deployment.zip") as zf:
        names = set(zf.namelist())
    assert "app.py" in names and "chalicelib/config.py" in names
    assert not {n for n in names if n.split("/")[0] in ("tests", "infra", "local", "web", "bench", "scripts")}


def test_each_function_role_names_only_its_resources(template):
    """One role per function, each statement naming template resources (no `*`), and nothing of
    Chalice's generated DefaultRole (which grants sqs:* on every queue and logs on every group)."""
    resources = template["Resources"]
    assert "DefaultRole" not in resources
    roles = set()
    for f in app_functions():
        role_ref = resources[f.logical_id]["Properties"]["Role"]
        role_id = role_ref["Fn::GetAtt"][0]
        roles.add(role_id)
        (policy,) = resources[role_id]["Properties"]["Policies"]
        named = set()
        for statement in statements(policy["PolicyDocument"]):
            assert not any("*" in a for a in as_list(statement["Action"]))
            assert all(isinstance(r, dict) for r in as_list(statement["Resource"]))  # no literal "*" or ARN
            named |= set(references(statement["Resource"]))
        assert f"{f.logical_id}LogGroup" in named
        # Other functions' log groups and queues are not this function's business.
        others = {g.logical_id + "LogGroup" for g in app_functions() if g != f}
        assert not named & others
        if f.queue:
            own_queue, _ = queues_by_name(template)[f.queue]
            assert own_queue in named
            source = resources[f.logical_id]["Properties"]["Events"][f"{f.logical_id}SqsEventSource"]
            assert source["Properties"]["Queue"] == {"Fn::GetAtt": [own_queue, "Arn"]}  # the placeholder replaced
    assert len(roles) == len(app_functions())


def test_both_zips_ship_bytecode_python_uses_without_the_sources(build, tmp_path):
    """infra.compile_package: a .pyc for every module, compiled for the runtime, unchecked-hash — so an
    import on Lambda's read-only /var/task and /opt loads it instead of compiling the source.
    Proved by importing `app` from the unpacked zips with every .py of chalicelib and botocore emptied:
    only the bytecode can make that import work."""
    from infra.check_package import bytecode_problems, pyc_name

    assert bytecode_problems(build) == []
    task, opt = tmp_path / "task", tmp_path / "opt"
    for name, target in (("deployment.zip", task), ("layer-deployment.zip", opt)):
        with zipfile.ZipFile(build / name) as zf:
            sources = [n for n in zf.namelist() if n.endswith(".py")]
            compiled = {n for n in zf.namelist() if n.endswith(".pyc")}
            zf.extractall(target)
        missing = [s for s in sources if pyc_name(s) not in compiled]
        assert len(missing) <= len(sources) // 100, missing[:10]  # a few deliberately invalid .py files only
    site = opt / site_packages_prefix()
    for source in [*(task / "chalicelib").rglob("*.py"), *(site / "botocore").rglob("*.py"), task / "app.py"]:
        source.write_text("raise ImportError('compiled from source')\n")
    code = (f"import sys; sys.path[:0] = [{str(task)!r}, {str(site)!r}]; import app; "
            "import chalicelib.aws.models, botocore.client; print(sorted(app.app.handler_map)[:2])")
    run = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("[")
