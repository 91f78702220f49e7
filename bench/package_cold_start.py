"""Cold import from the deployment package, as Lambda runs it: with and without shipped bytecode.

Unzips `make package`'s deployment.zip and layer-deployment.zip into read-only `task/` and `opt/`
folders (Lambda's /var/task and /opt), then times fresh processes of the base CPython (`-S`: no
venv, only the stdlib and those folders on sys.path, PYTHONDONTWRITEBYTECODE as on a read-only
disk) importing `app` — once from the zips as infra.compile_package leaves them, once with every
`.pyc` removed (what `chalice package` alone ships) — against `import botocore.session` from the
same layer (the layer holds no boto3: Lambda's runtime provides it; botocore is what its import costs).

    .venv/bin/python -m bench.package_cold_start [--build build/prod] [--package] [--rounds 7]

(--package builds the zips first, with scripts/package.sh.)
"""
from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import ROOT, machine, ms, summary, today, write
from infra.check_package import site_packages_prefix

# The interpreter itself, not the venv's: `-S` then leaves only the stdlib on sys.path.
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
CODE = """
import sys
sys.path[:0] = [{task!r}, {site!r}]
import {module}
"""


def unpack(build: Path, dest: Path, with_bytecode: bool) -> tuple[Path, Path]:
    task, opt = dest / "task", dest / "opt"
    for name, target in (("deployment.zip", task), ("layer-deployment.zip", opt)):
        with zipfile.ZipFile(build / name) as zf:
            for info in zf.infolist():
                if not with_bytecode and info.filename.endswith(".pyc"):
                    continue
                zf.extract(info, target)
    for folder in (task, opt):  # read-only, as Lambda mounts them
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in filenames:
                os.chmod(Path(dirpath) / name, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return task, opt / site_packages_prefix()


def build_package(build: Path) -> None:
    subprocess.run(["scripts/package.sh", "prod", str(build)], cwd=str(ROOT), check=True,
                   env={**os.environ, "PY": sys.executable})


def package_is_stale(build: Path) -> bool:
    """Missing, or older than what it packages: "as deployed" must time this checkout, not the last build."""
    zips = [build / "deployment.zip", build / "layer-deployment.zip"]
    if not all(z.exists() for z in zips):
        return True
    built = min(z.stat().st_mtime for z in zips)
    sources = [ROOT / "app.py", ROOT / "requirements.txt", ROOT / "scripts" / "package.sh",
               *ROOT.joinpath(".chalice").glob("*.json"), *ROOT.joinpath("chalicelib").rglob("*.py"),
               *ROOT.joinpath("infra").glob("*.py")]
    return any(p.stat().st_mtime > built for p in sources)


def remove_tree(path: Path) -> None:
    """rmtree of an unpack() (its files are read-only)."""
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            os.chmod(Path(dirpath) / name, stat.S_IRUSR | stat.S_IWUSR)
    shutil.rmtree(path, ignore_errors=True)


def run(python: str, task: Path, site: Path, module: str) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1",
           "POWERTOOLS_SERVICE_NAME": "avatar-creator", "HOME": str(task.parent)}
    started = time.perf_counter()
    done = subprocess.run([python, "-S", "-c", CODE.format(task=str(task), site=str(site), module=module)],
                          env=env, capture_output=True, text=True, cwd=str(task.parent))
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"import {module} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build" / "prod"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--package", action="store_true",
                        help="run scripts/package.sh prod BUILD first (done anyway when BUILD is missing or stale)")
    args = parser.parse_args(argv)
    build = Path(args.build)
    if args.package or package_is_stale(build):
        build_package(build)
    python = BASE_PYTHON
    tmp = Path(tempfile.mkdtemp(prefix="bench-package-"))
    try:
        variants = {"with .pyc": unpack(build, tmp / "pyc", True), "without .pyc": unpack(build, tmp / "src", False)}
        cases = [(v, m) for v in variants for m in ("botocore.session", "app")]
        for variant, module in cases:  # warm the page cache
            run(python, *variants[variant], module)
        times: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
        for _ in range(args.rounds):
            for variant, module in cases:
                times[(variant, module)].append(run(python, *variants[variant], module))
    finally:
        remove_tree(tmp)

    med = {c: summary(t)["median"] for c, t in times.items()}
    rows = [f"| `import {m}` | {ms(med[('without .pyc', m)])} | {ms(med[('with .pyc', m)])} | "
            f"{med[('without .pyc', m)] / med[('with .pyc', m)]:.1f}× |" for m in ("botocore.session", "app")]
    ratio = med[("with .pyc", "app")] / med[("with .pyc", "botocore.session")]
    text = f"""# Cold import from the deployment package

Measured {today()} on {machine()}; {args.rounds} interleaved rounds after a warm-up, medians.
Rerun: `.venv/bin/python -m bench.package_cold_start --package` (or `make bench`).

The zips of `make package` unpacked read-only (Lambda's /var/task and /opt), imported by fresh
processes of the base CPython with only the stdlib and those folders on `sys.path`. Lambda can
never write `__pycache__` there, so without bytecode in the zips every cold start compiles every
module it imports; infra.compile_package adds unchecked-hash `.pyc` files to both zips.

| process | as `chalice package` ships it (no .pyc) | with shipped .pyc | saved |
|---|---|---|---|
""" + "\n".join(rows) + f"""

With bytecode, importing `app` takes **{ratio:.2f}×** the time of importing `botocore.session` from the same layer
(interpreter start included on both sides).
"""
    write("package_cold_start", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
