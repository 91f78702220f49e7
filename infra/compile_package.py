"""Ship bytecode: add `.pyc` files to the zips `chalice package` wrote (run by scripts/package.sh).

    python -m infra.compile_package build/prod

Lambda unpacks the function to /var/task and layers to /opt, both read-only, so Python can never
write its `__pycache__` there: without `.pyc` in the zips, every cold start compiles every module it
imports (botocore, pynamodb, chalice, powertools, app.py, chalicelib) from source. The layer Chalice
builds holds none (wheels ship none) and deployment.zip holds whatever stale `__pycache__` the build
machine had. This replaces both with fresh `.pyc` files compiled by the runtime's CPython version,
in unchecked-hash mode (PEP 552): zip extraction does not keep source mtimes, so timestamp-checked
files could be judged stale and ignored. Tracebacks show the paths Lambda uses (/var/task, /opt).
bench/package_cold_start.py measures the difference.
"""
from __future__ import annotations

import compileall
import os
import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from infra.check_package import RUNTIME, running_runtime

# zip name -> where Lambda unpacks it
ARCHIVES = {"deployment.zip": "/var/task", "layer-deployment.zip": "/opt"}


def compile_archive(path: Path, lambda_root: str) -> tuple[int, int]:
    """Rewrite `path` with a fresh `.pyc` beside every `.py` that compiles; (compiled, sources)."""
    with tempfile.TemporaryDirectory(prefix="compile-package-") as tmp:
        root = Path(tmp) / "root"
        modes: dict[str, int] = {}
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if "__pycache__/" in info.filename or info.filename.endswith(".pyc"):
                    continue  # the build machine's, maybe stale: compiled again below
                modes[info.filename] = info.external_attr
                zf.extract(info, root)
        # quiet=2: a few distributions ship deliberately invalid .py files (templates, py2 samples).
        compileall.compile_dir(str(root), ddir=lambda_root, quiet=2, workers=0,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        sources = compiled = 0
        out = path.with_suffix(".tmp")
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    arcname = full.relative_to(root).as_posix()
                    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = modes.get(arcname, 0o100644 << 16)
                    zf.writestr(info, full.read_bytes())
                    if name.endswith(".py"):
                        sources += 1
                    elif name.endswith(".pyc"):
                        compiled += 1
        shutil.move(out, path)
        return compiled, sources


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    build_dir = Path(args[0] if args else "build/prod")
    if running_runtime() != RUNTIME:
        print(f"ERROR: compile with {RUNTIME} (this is {running_runtime()}): "
              f"the .pyc magic number must match Lambda's runtime", file=sys.stderr)
        return 1
    for name, lambda_root in ARCHIVES.items():
        path = build_dir / name
        before = path.stat().st_size
        compiled, sources = compile_archive(path, lambda_root)
        print(f"{name}: {compiled} .pyc for {sources} .py ({before / 1e6:.1f} MB -> {path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
