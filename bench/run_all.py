"""`make bench`: every benchmark, then BENCHMARKS.md assembled from bench/results/*.md.

Each benchmark starts its own local stack and writes bench/results/<name>.md; a failing one is
reported in BENCHMARKS.md instead of hiding the others.
"""
from __future__ import annotations

import subprocess
import sys
import time

from bench.common import RESULTS, ROOT, machine, today

BENCHES = [
    # Builds the package (scripts/package.sh) that cold_start runs "as deployed".
    ("package_cold_start", ["-m", "bench.package_cold_start", "--package", "--rounds", "7"]),
    ("cold_start", ["-m", "bench.cold_start", "--rounds", "21"]),
    ("api", ["-m", "bench.api", "--rounds", "20"]),
    ("calls", ["-m", "bench.calls"]),
    ("thumbnails", ["-m", "bench.thumbnails", "--rounds", "7"]),
    ("pipelines", ["-m", "bench.pipelines", "--uploads", "10", "--jobs", "20"]),
    ("load", ["-m", "bench.load", "--clients", "16", "--seconds", "15"]),
    ("usage", ["-m", "bench.usage.bench_usage", "--events", "500", "--pollers", "1,4", "--seconds", "5"]),
    ("usage_batching", ["-m", "bench.usage.batching", "--rounds", "3"]),
    ("capacity_sim", ["-m", "bench.capacity_sim", "--users", "200", "--clients", "8", "--seconds", "45"]),
    ("page", ["-m", "bench.page", "--avatars", "200", "--rounds", "7"]),
    ("events", ["-m", "bench.events", "--paced", "100", "--rate", "5", "--burst", "100", "--slow-delay", "3"]),
    ("events_fairness", ["-m", "bench.events_fairness", "--hooks", "10", "--delay", "10", "--backlog", "20",
                         "--edits", "10", "--probes", "20"]),
]
ORDER = ["cold_start", "package_cold_start", "api", "calls", "load", "pipelines", "thumbnails", "usage",
         "usage_batching", "capacity_sim", "page", "events", "events_fairness",
         "test_suite"]  # test_suite.md: written by hand (make test timings)


def main() -> int:
    started = time.monotonic()
    failed = {}
    # --assemble: only rebuild BENCHMARKS.md from the results already written.
    for name, args in ([] if "--assemble" in sys.argv else BENCHES):
        print(f"== {name}: {' '.join(args)}", flush=True)
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, *args], cwd=str(ROOT))
        print(f"== {name}: exit {done.returncode} in {time.monotonic() - t0:.0f}s", flush=True)
        if done.returncode != 0:
            failed[name] = done.returncode
    parts = [f"""# Benchmarks

{"Assembled from bench/results/*.md" if "--assemble" in sys.argv else f"Written by `make bench` in {time.monotonic() - started:.0f} s"} on {today()} ({machine()}); each section says when and how it was measured.
Every figure below says how to rerun it alone. These machines are noisy: ratios are measured against a
reference taken in the same run, and medians with their spread are given.
"""]
    if failed:
        parts.append("**Failed this run:** " + ", ".join(f"{n} (exit {c})" for n, c in failed.items()) + "\n")
    for name in ORDER:
        path = RESULTS / f"{name}.md"
        if path.exists():
            body = path.read_text().strip()
            parts.append("#" + body if body.startswith("# ") else body)
    (ROOT / "BENCHMARKS.md").write_text("\n\n".join(parts) + "\n")
    print("wrote BENCHMARKS.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
