"""Checks on a `chalice package` output that cfn-lint cannot make (run by `make package`).

    python -m infra.check_package build/prod

- every resource has a Type: an entry of infra/resources.json that extends a Chalice-generated
  function (no Type of its own) must match a function app.py really has, or the merge makes a
  half resource;
- every function runs on the runtime the layer was built for;
- Pillow's C extension comes from a manylinux wheel for that runtime, with the libraries the wheel
  bundles (`pillow.libs/`). When pip finds no wheel for Lambda's platform, Chalice quietly builds
  Pillow from source on this machine, and the `_imaging*.so` it bundles needs this machine's
  libjpeg/libxcb — it imports here and fails on Lambda;
- the same for every other distribution in the zips: each is a pure-Python wheel or a manylinux
  x86_64 wheel for the runtime's CPython (or the stable ABI), never a `linux_x86_64` build of this
  machine (pydantic-core, PyYAML and hf-xet ship compiled code too);
- the modules every cold start imports come with bytecode for the runtime that Python will use
  without checking source timestamps (infra.compile_package), since Lambda cannot write any;
- the slim botocore data (chalicelib/aws/botocore_data.py) matches the layer's botocore.
"""
from __future__ import annotations

import json
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

RUNTIME = "python3.12"
_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")


@dataclass(frozen=True)
class PillowBuild:
    archive: str            # which zip holds it
    extension: str          # path of PIL/_imaging*.so
    wheel_tags: tuple[str, ...]
    bundled_libs: tuple[str, ...]


def py_tag(runtime: str = RUNTIME) -> str:
    """python3.12 → cp312 (wheel tags; the .pyc cache tag is cpython-312)."""
    return "cp" + runtime.removeprefix("python").replace(".", "")


def running_runtime() -> str:
    """This interpreter as a Lambda runtime name (python3.12)."""
    return f"python{sys.version_info[0]}.{sys.version_info[1]}"


def site_packages_prefix(runtime: str = RUNTIME) -> str:
    return f"python/lib/{runtime}/site-packages/"


def find_pillow(build_dir: Path, runtime: str = RUNTIME) -> PillowBuild | None:
    """Pillow in the layer (automatic_layer) or, failing that, in the deployment zip."""
    for name in ("layer-deployment.zip", "deployment.zip"):
        path = build_dir / name
        if not path.exists():
            continue
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            ext = next((n for n in names if re.search(r"(^|/)PIL/_imaging\.cpython-[^/]*\.so$", n)), None)
            if ext is None:
                continue
            root = ext[: ext.index("PIL/")]
            wheel = next((n for n in names if re.fullmatch(re.escape(root) + r"pillow-[^/]+\.dist-info/WHEEL", n)),
                         None)
            tags = ()
            if wheel:
                tags = tuple(line.split(":", 1)[1].strip() for line in zf.read(wheel).decode().splitlines()
                             if line.startswith("Tag:"))
            libs = tuple(sorted(n[len(root):] for n in names if n.startswith(root + "pillow.libs/")
                                and not n.endswith("/")))
            return PillowBuild(name, ext, tags, libs)
    return None


def wheel_tags(build_dir: Path) -> dict[str, tuple[str, ...]]:
    """{archive:distribution-version: WHEEL tags} for every distribution in the zips."""
    found = {}
    for name in ("layer-deployment.zip", "deployment.zip"):
        path = build_dir / name
        if not path.exists():
            continue
        with zipfile.ZipFile(path) as zf:
            for entry in zf.namelist():
                if entry.endswith(".dist-info/WHEEL"):
                    dist = entry.rsplit("/", 2)[-2].removesuffix(".dist-info")
                    found[f"{name}:{dist}"] = tuple(line.split(":", 1)[1].strip()
                                                    for line in zf.read(entry).decode().splitlines()
                                                    if line.startswith("Tag:"))
    return found


def lambda_compatible(tag: str, runtime: str = RUNTIME) -> bool:
    runtime_tag = py_tag(runtime)
    python, abi, platform = tag.split("-")
    if platform == "any":
        return abi == "none" and python.startswith("py")
    glibc = re.fullmatch(r"manylinux(?:_2_(\d+)|(2014|2010|1))_x86_64", platform)
    if not glibc:
        return False
    # Amazon Linux 2023 (the python3.12 image) has glibc 2.34.
    if glibc.group(1) and int(glibc.group(1)) > 34:
        return False
    return (python, abi) == (runtime_tag, runtime_tag) or (abi == "abi3" and python.startswith("cp3")
                                                          and int(python[3:]) <= int(runtime_tag[3:]))


# (archive, module source) that must have usable bytecode: the app's, and its heaviest imports.
_BYTECODE_REQUIRED = (
    ("deployment.zip", "app.py"),
    ("deployment.zip", "chalicelib/aws/models.py"),
    ("layer-deployment.zip", "{site}botocore/client.py"),
    ("layer-deployment.zip", "{site}pynamodb/models.py"),
    ("layer-deployment.zip", "{site}aws_lambda_powertools/logging/logger.py"),
)


def pyc_name(source: str, runtime: str = RUNTIME) -> str:
    """Where Python looks for the bytecode of `source` (a/b.py → a/__pycache__/b.cpython-312.pyc)."""
    folder, _, name = source.rpartition("/")
    return f"{folder + '/' if folder else ''}__pycache__/{name[:-3]}.cpython-{py_tag(runtime)[2:]}.pyc"


def bytecode_problems(build_dir: Path, runtime: str = RUNTIME) -> list[str]:
    import importlib.util

    found = []
    site = site_packages_prefix(runtime)
    same_runtime = running_runtime() == runtime  # else the magic number cannot be checked here
    for archive, source in _BYTECODE_REQUIRED:
        path = build_dir / archive
        if not path.exists():
            found.append(f"no {archive}")
            continue
        with zipfile.ZipFile(path) as zf:
            name = pyc_name(source.format(site=site), runtime)
            try:
                header = zf.read(name)[:8]
            except KeyError:
                found.append(f"{archive}: no {name} (every cold start would compile it)")
                continue
        if same_runtime and header[:4] != importlib.util.MAGIC_NUMBER:
            found.append(f"{archive}: {name} was compiled by another Python version")
        if int.from_bytes(header[4:8], "little") != 0b01:
            found.append(f"{archive}: {name} is not unchecked-hash bytecode (zip mtimes would make it stale)")
    return found


def botocore_data_problems(build_dir: Path, runtime: str = RUNTIME) -> list[str]:
    """The slim botocore data in deployment.zip must be cut from the layer's botocore, or the app
    silently falls back to the full catalogue (correct, but the cold start it saves is lost)."""
    with zipfile.ZipFile(build_dir / "deployment.zip") as zf:
        try:
            built_for = zf.read("chalicelib/aws/_botocore_data/VERSION").decode().strip()
        except KeyError:
            return ["deployment.zip has no chalicelib/aws/_botocore_data (python -m chalicelib.aws.botocore_data)"]
    with zipfile.ZipFile(build_dir / "layer-deployment.zip") as zf:
        prefix = site_packages_prefix(runtime) + "botocore-"
        layer = [n[len(prefix):].split(".dist-info/")[0] for n in zf.namelist()
                 if n.startswith(prefix) and n.endswith(".dist-info/METADATA")]
    if layer != [built_for]:
        return [f"chalicelib/aws/_botocore_data is for botocore {built_for}, the layer holds {layer or 'none'}: "
                f"pin botocore=={built_for} in requirements.txt"]
    return []


def problems(build_dir: str | Path, runtime: str = RUNTIME) -> list[str]:
    build_dir = Path(build_dir)
    template = json.loads((build_dir / "sam.json").read_text())
    found = []
    for name, resource in template.get("Resources", {}).items():
        if "Type" not in resource:
            found.append(f"{name}: no Type — infra/resources.json extends a resource Chalice did not generate "
                         f"(is the handler in app.py?)")
        elif resource["Type"] in _FUNCTION_TYPES and resource.get("Properties", {}).get("Runtime") != runtime:
            found.append(f"{name}: runtime {resource.get('Properties', {}).get('Runtime')}, expected {runtime}")
    for dist, tags in sorted(wheel_tags(build_dir).items()):
        if not tags or not any(lambda_compatible(t, runtime) for t in tags):
            found.append(f"{dist} is not a wheel Lambda {runtime} can load (tags {list(tags)}): built on this "
                         f"machine? Pin a version with a manylinux x86_64 wheel")
    found.extend(bytecode_problems(build_dir, runtime))
    found.extend(botocore_data_problems(build_dir, runtime))
    pillow = find_pillow(build_dir, runtime)
    runtime_tag = py_tag(runtime)
    if pillow is None:
        found.append("no PIL/_imaging*.so in layer-deployment.zip or deployment.zip")
    else:
        if not pillow.wheel_tags or not all(re.fullmatch(rf"{runtime_tag}-{runtime_tag}-manylinux\w*_x86_64", t)
                                            for t in pillow.wheel_tags):
            found.append(f"Pillow in {pillow.archive} is not a {runtime_tag} manylinux x86_64 wheel "
                         f"(tags {list(pillow.wheel_tags)}): built from source? Pin a version with such a wheel")
        abi = "cpython-" + runtime_tag.removeprefix("cp")
        if abi not in pillow.extension:
            found.append(f"{pillow.extension} is not built for {abi}")
        if not any(lib.startswith("pillow.libs/libjpeg") for lib in pillow.bundled_libs):
            found.append(f"Pillow in {pillow.archive} has no bundled pillow.libs/libjpeg*")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    build_dir = Path(args[0] if args else "build/prod")
    found = problems(build_dir)
    for line in found:
        print(f"ERROR: {line}", file=sys.stderr)
    if not found:
        pillow = find_pillow(build_dir)
        print(f"package ok: {RUNTIME} everywhere; {pillow.extension} from {', '.join(pillow.wheel_tags)} "
              f"with {len(pillow.bundled_libs)} bundled libraries")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
