"""Shared fixtures and the parallel schedule.

Only `local_stack` lives here: a whole local stack, started lazily — unit and functional tests
never request it, so they never start it. Under pytest-xdist (`make test` runs `-n`), session
fixtures are per worker: each worker that needs the stack starts one and shares it between its tests
(they use their own user ids, so they do not see each other's data)."""
from __future__ import annotations

import pytest

# Longest first, so that no worker starts one of them when the others are nearly done: the bounded
# invariant run (~2.5 min alone), then the slowest module setups (the package build and the packaged
# stack, the capacity profile, the local stacks with settings of their own). BENCHMARKS.md.
LONG_FIRST = (
    "tests/functional/test_invariants.py",
    "tests/e2e/test_a11y_matrix.py",
    "tests/functional/test_job_timing.py",
    "tests/functional/test_call_counts_scale.py",
    "tests/functional/test_call_counts.py",
    "tests/integration/test_package.py",
    "tests/integration/test_packaged_stack.py",
    "tests/functional/test_capacity_profile.py",
    "tests/integration/test_fuzz.py",
    "tests/integration/test_faults_local.py",
    "tests/integration/test_generation_flow.py",
    "tests/integration/test_restart.py",
    "tests/integration/test_events_flow.py",
    "tests/integration/test_feeder.py",
)
# Marked slow, so `make test-fast` (-m "not slow", the edit loop) leaves them out; `make test` runs them
# all: the hypothesis state-machine runs, the recorded capacity profile (a module setup of ~30 s), and
# the call-count checks at 5,000 items (their seeding is most of their time; the 10-item case stays).
STATE_MACHINE_RUNS = ("tests/functional/test_invariants.py",)
SLOW_FOR_THE_EDIT_LOOP = ("tests/functional/test_capacity_profile.py",)
SLOW_CASES = ("[5000]",)
# Both build build/test-prod with `make package`, cached per process (tests.support.infra): in one
# worker they build it once, and two workers never write the same directory at the same time.
SAME_WORKER = {"tests/integration/test_package.py": "package build",
               "tests/integration/test_packaged_stack.py": "package build"}
# Modules of a few long tests and no module-scoped fixture: each test is a unit of its own, so two
# workers share them instead of one running them back to back at the end (the axe matrix: ~80 s a
# language; the job-timing machines: 25-40 s each).
BY_TEST = ("tests/e2e/test_a11y_matrix.py", "tests/functional/test_job_timing.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Whole modules to a worker (as `--dist loadscope`), and the modules of SAME_WORKER together.

    A module runs on one worker, so its module-scoped fixtures are set up once (the capacity profile
    alone takes ~40 s). (xdist's own `--dist loadgroup` marks do nothing under pytest 9: they rewrite
    `Item._nodeid`, which pytest 9 no longer reads.)"""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path in BY_TEST else SAME_WORKER.get(path, path)

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the state-machine runs slow and, in xdist workers, put the long work first (with
    `--no-loadscope-reorder`, pytest.ini, xdist hands modules out in the workers' collection order).
    A run without `-n` keeps the file order."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path in STATE_MACHINE_RUNS + SLOW_FOR_THE_EDIT_LOOP or item.nodeid.endswith(SLOW_CASES):
            item.add_marker(pytest.mark.slow)
    if not hasattr(config, "workerinput"):
        return

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


# Run in a thread of their own (a fresh, shallow frame stack): under the main thread these tests' hot
# loop (moto comparing 5,000 items) ran right at a boundary of CPython 3.12's frame data-stack chunks,
# which maps a 16 KiB chunk on every call across it and unmaps it on return — 1.4 million mmap/munmap
# pairs, 52 of 65 s in system time (strace; BENCHMARKS.md, "The test suite"). In a thread: ~10 s each.
FRESH_STACK_CASES = ("tests/functional/test_call_counts.py::test_api_reads_make_the_same_dynamodb_calls_for_10_and_5000_items[5000]",
                     "tests/functional/test_call_counts_scale.py::test_more_reads_make_the_same_dynamodb_calls_for_10_and_5000_items[5000]")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    if pyfuncitem.nodeid not in FRESH_STACK_CASES:
        return None
    import inspect
    import threading

    arguments = {name: pyfuncitem.funcargs[name] for name in inspect.signature(pyfuncitem.obj).parameters}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            pyfuncitem.obj(**arguments)
        except BaseException as exc:  # noqa: BLE001 — re-raised in the test's own thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name=f"fresh-stack {pyfuncitem.name}")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return True


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """`python -m local.stack` on free ports and a temporary data dir (LOCAL_VISIBILITY_TIMEOUT=3).
    Yields tests.support.local_stack.LocalStack: .outputs, .api(path), .token(user), .request(...)."""
    from tests.support.local_stack import LocalStack

    stack = LocalStack(tmp_path_factory.mktemp("local-stack")).start()
    try:
        yield stack
    finally:
        stack.stop()
