"""The service's invariants under random histories: a hypothesis state machine over moto and the
real handlers (the Chalice app through chalice.test.Client, the SQS handlers fed like Lambda's event
source mapping, the real InferenceClient against the fake FLUX server).

Steps: create and delete projects, upload, generate with and without Idempotency-Keys (a small pool,
so keys repeat), cancel, retry, delete avatars, record usage (event ids repeat, across apps), edit
avatars and restore their versions (numbers repeat, so restores replay), make and revoke share links, export avatars and projects,
make the provider fail, and deliver queued messages one batch at a time — duplicated, reordered, or
interleaved with all of the above; the sweeper runs with a clock moved past every deadline. Teams (issue 30):
add members with a role, change it, remove them (or they leave), members read and write the shared
project by their role.

After every step (infra.audit's checks, the same an operator runs with `make audit`):
  every counter equals a recount of what it counts; no item is left without its parent; no 5xx;
  each avatar holds exactly its newest min(versionCount, 100) versions; no version, usage row or share
  link outlives its avatar, and no export its avatar or project (infra.audit.check_gone over every id
  the history made);
  each generation got at most one successful provider call per claim the user paid for;
  once every queue is drained and nothing is in flight, no file is left that no avatar points at, and
  no export file without its (unexpired) record; no membership outlives its project, each project's
  member counts match its memberships, and a removed member reads nothing of the project (404, as for
  a stranger).

`make test` runs a bounded number of examples; `make invariants` a long run (INVARIANT_EXAMPLES).
"""
from __future__ import annotations

import io
import json
import os
import random
from collections import Counter
from datetime import timedelta

import boto3
import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from tests.support.moto import mock_aws

from tests.functional.conftest import SECRET, GatewayClient, auth, body
from tests.support import images as img
from tests.support.fake_flux import FakeFlux

PREFIX = "/api/apps/avatar-creator"
USERS = ("alice", "bob")
STRANGER = "mallory"  # never owns anything, never is a member
MEMBER_POOL = ("alice", "bob", "carol")  # carol owns nothing: she only ever works in others' projects
ROLES = ("viewer", "editor", "owner")
APPS = ("pose-generator", "video-generator")
KEYS = ("k1", "k2", "k3")
EVENTS = ("e1", "e2", "e3")
WORKERS = {"generation_worker": "GenerationQueueUrl", "upload_worker": "UploadQueueUrl",
           "cleanup_worker": "CleanupQueueUrl", "generation_dlq_worker": "GenerationDlqUrl",
           "upload_dlq_worker": "UploadDlqUrl", "export_worker": "ExportQueueUrl"}
EXAMPLES = int(os.environ.get("INVARIANT_EXAMPLES", "6"))
STEPS = int(os.environ.get("INVARIANT_STEPS", "40"))

_flux: FakeFlux | None = None


class Service(RuleBasedStateMachine):
    """One fresh stack per example; the model of what exists is read back from the API."""

    def __init__(self) -> None:
        super().__init__()
        self._env = dict(os.environ)
        self._mock = mock_aws()
        self._mock.start()
        from chalicelib import dependencies
        from local.provision import provision

        outputs = provision(endpoint_url=None, region="us-east-1")
        os.environ.update({
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1", "JWT_SECRET": SECRET, "STAGE": "test",
            "TABLE_NAME": outputs["TableName"], "UPLOAD_BUCKET": outputs["UploadBucket"],
            "UPLOAD_QUEUE_URL": outputs["UploadQueueUrl"], "GENERATION_QUEUE_URL": outputs["GenerationQueueUrl"],
            "GENERATION_DLQ_URL": outputs["GenerationDlqUrl"], "USAGE_EVENTS_QUEUE_URL": outputs["UsageEventsQueueUrl"],
            "CLEANUP_QUEUE_URL": outputs["CleanupQueueUrl"], "EXPORT_QUEUE_URL": outputs["ExportQueueUrl"],
            "GENERATION_PROVIDER": "hf",
            "FLUX_ENDPOINT_URL": _flux.url, "SAFETY_ENDPOINT_URL": _flux.safety_url, "HF_TOKEN": "hf_test", "FLUX_TIMEOUT_SECONDS": "2",
            "GENERATION_BACKOFF_SECONDS": "0", "GENERATION_ACTIVE_LIMIT": "3", "PURGE_BATCH_SIZE": "2",
        })
        os.environ.pop("AWS_ENDPOINT_URL", None)
        dependencies.reset()
        self.outputs = outputs
        from app import app

        self.client = GatewayClient(app)
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        _flux.script = ["ok"]
        _flux.requests.clear()
        self.projects: list[tuple[str, str]] = []  # (user, project id), deleted ones included
        self.avatars: list[tuple[str, str]] = []
        self.generations: list[tuple[str, str]] = []
        self.paid_claims: Counter = Counter()  # generation id -> starts + retries the user asked for
        self.seed = 0
        self.seed_of: dict[str, int] = {}
        self.server_errors: list[str] = []
        self.shares: list[tuple[str, str]] = []  # (user, share id)
        self.members: dict[str, dict[str, str]] = {}  # project id -> {member: role}
        self.removed: set[tuple[str, str]] = set()  # (project id, user) removed and not added again

    def teardown(self) -> None:
        from chalicelib import dependencies

        self._mock.stop()
        os.environ.clear()
        os.environ.update(self._env)
        dependencies.reset()

    @initialize()
    def a_user_with_ready_avatars(self):
        """Every history starts where the interesting races are: each user has a project with a
        generated and an uploaded avatar, both ready; alice's has bob (editor) and carol (viewer)."""
        for user in USERS:
            self.create_project(user)
            self.generate_and_deliver(len(self.projects) - 1, duplicate=False)
            self.upload(len(self.projects) - 1, "jpeg")
        self.deliver("upload_worker", duplicate=False, reverse=False)
        # ... and alice's project is shared from the start (issue 30), so members act from the first step.
        self.add_member(0, "bob", "editor")
        self.add_member(0, "carol", "viewer")

    # ---- the API, as a client ------------------------------------------------------------------

    def call(self, method: str, path: str, user: str, data: dict | None = None, headers: dict | None = None):
        send = getattr(self.client.http, method)
        kwargs = {"headers": {**auth(user), **(headers or {})}}
        if data is not None:
            kwargs["body"] = body(data)
        response = send(PREFIX + path, **kwargs)
        if response.status_code >= 500:
            self.server_errors.append(f"{method.upper()} {path} → {response.status_code} {response.body[:300]!r}")
        return response

    @rule(user=st.sampled_from(USERS))
    def create_project(self, user):
        response = self.call("post", "/projects", user, {"name": "P"})
        assert response.status_code == 201
        self.projects.append((user, response.json_body["id"]))

    # ---- teams (issue 30) ------------------------------------------------------------------------

    @precondition(lambda self: self.projects)
    @rule(pick=st.integers(0, 50), member=st.sampled_from(MEMBER_POOL), role=st.sampled_from(ROLES))
    def add_member(self, pick, member, role):
        home, pid = self.projects[pick % len(self.projects)]
        response = self.call("post", f"/projects/{pid}/members", home, {"userId": member, "role": role})
        assert response.status_code in (200, 201, 404, 409), response.body
        if response.status_code == 201:
            self.members.setdefault(pid, {})[member] = role
            self.removed.discard((pid, member))

    @precondition(lambda self: self.members)
    @rule(pick=st.integers(0, 50), role=st.sampled_from(ROLES), leave=st.booleans(), remove=st.booleans())
    def change_or_remove_member(self, pick, role, leave, remove):
        pid = sorted(self.members)[pick % len(self.members)]
        home = next(u for u, p in self.projects if p == pid)
        if not self.members[pid]:
            return
        member = sorted(self.members[pid])[pick % len(self.members[pid])]
        actor = member if leave else home
        if remove or leave:
            response = self.call("delete", f"/projects/{pid}/members/{member}", actor)
            assert response.status_code in (204, 404), response.body
            if response.status_code == 204:
                del self.members[pid][member]
                self.removed.add((pid, member))
        else:
            response = self.call("put", f"/projects/{pid}/members/{member}", actor, {"role": role})
            assert response.status_code in (200, 404), response.body
            if response.status_code == 200:
                self.members[pid][member] = role

    @precondition(lambda self: any(self.members.values()))
    @rule(pick=st.integers(0, 50), write=st.booleans())
    def member_reads_or_writes(self, pick, write):
        pairs = sorted((pid, m, r) for pid, ms in self.members.items() for m, r in ms.items())
        pid, member, role = pairs[pick % len(pairs)]
        home = next(u for u, p in self.projects if p == pid)
        if not write:
            response = self.call("get", f"/projects/{pid}", member)
            assert response.status_code in (200, 404), response.body  # 404: the project was deleted
            if response.status_code == 200:
                assert response.json_body["myRole"] == role and response.json_body["homeUserId"] == home
            return
        self.seed += 1
        response = self.call("post", f"/projects/{pid}/avatars/generate", member,
                             {"prompt": "a portrait", "name": "M", "width": 256, "height": 256, "seed": self.seed})
        if role == "viewer":
            assert response.status_code in (403, 404), response.body
            return
        assert response.status_code in (202, 404, 429), response.body
        if response.status_code == 202:
            gid = response.json_body["id"]
            self.generations.append((home, gid))  # it lives in the home partition
            self.paid_claims[gid] += 1
            self.seed_of[gid] = self.seed

    @precondition(lambda self: self.projects)
    @rule(pick=st.integers(0, 50))
    def delete_project(self, pick):
        user, pid = self.projects[pick % len(self.projects)]
        assert self.call("delete", f"/projects/{pid}", user).status_code in (204, 404)

    @precondition(lambda self: self.projects)
    @rule(pick=st.integers(0, 50), fmt=st.sampled_from(["jpeg", "png", "broken"]))
    def upload(self, pick, fmt):
        user, pid = self.projects[pick % len(self.projects)]
        data = {"jpeg": lambda: img.jpeg(64, 48), "png": lambda: img.png(40, 60),
                "broken": img.truncated_jpeg}[fmt]()
        response = self.call("post", f"/projects/{pid}/avatars/upload", user,
                             {"name": "U", "contentType": "image/png" if fmt == "png" else "image/jpeg",
                              "size": len(data)})
        assert response.status_code in (201, 404)
        if response.status_code == 201:
            created = response.json_body
            self.avatars.append((user, created["avatar"]["id"]))
            boto3.client("s3", region_name="us-east-1").put_object(
                Bucket=self.outputs["UploadBucket"], Key=created["upload"]["fields"]["key"], Body=data)

    @precondition(lambda self: self.projects)
    @rule(pick=st.integers(0, 50), key=st.one_of(st.none(), st.sampled_from(KEYS)))
    def generate(self, pick, key):
        user, pid = self.projects[pick % len(self.projects)]
        self.seed += 1
        # A key always carries the same request (so reusing it replays), but a seed of its own.
        seed = self.seed if key is None else 10_000 + 10 * USERS.index(user) + KEYS.index(key)
        response = self.call("post", f"/projects/{pid}/avatars/generate", user,
                             {"prompt": "a portrait", "name": "G", "width": 256, "height": 256, "seed": seed},
                             headers={"Idempotency-Key": key} if key else None)
        assert response.status_code in (200, 202, 404, 409, 429), response.body
        if response.status_code == 202:
            gid = response.json_body["id"]
            self.generations.append((user, gid))
            self.paid_claims[gid] += 1
            self.seed_of[gid] = seed
        if response.status_code == 429:
            assert response.headers.get("Retry-After")

    @precondition(lambda self: self.projects)
    @rule(pick=st.integers(0, 50), duplicate=st.booleans())
    def generate_and_deliver(self, pick, duplicate):
        """The common path in one step, so histories reach ready avatars (and their uses) quickly."""
        self.generate(pick, None)
        self.deliver("generation_worker", duplicate=duplicate, reverse=False)

    @precondition(lambda self: self.generations)
    @rule(pick=st.integers(0, 50), action=st.sampled_from(["cancel", "retry"]))
    def cancel_or_retry(self, pick, action):
        user, gid = self.generations[pick % len(self.generations)]
        response = self.call("post", f"/generations/{gid}/{action}", user)
        assert response.status_code in (200, 202, 404, 409, 429), response.body
        if action == "retry" and response.status_code in (200, 202):
            self.paid_claims[gid] += 1

    def known_avatars(self, *, ready_only: bool = False) -> list[tuple[str, str]]:
        """Ready avatars first (most actions on others are refused), then the rest."""
        from chalicelib.aws.models import AvatarModel, avatar_pk

        known = self.avatars + [(u, "ava_" + g.split("_", 1)[1]) for u, g in self.generations]
        ready = [(u, a) for u, a in known
                 if any(m.status == "ready" for m in AvatarModel.query(avatar_pk(u, a), AvatarModel.sk == "META"))]
        return (ready or known) if ready_only else ready + [k for k in known if k not in ready]

    @precondition(lambda self: self.avatars or self.generations)
    @rule(pick=st.integers(0, 50))
    def delete_avatar(self, pick, ready=False):
        known = self.known_avatars(ready_only=ready)
        user, aid = known[pick % len(known)]
        assert self.call("delete", f"/avatars/{aid}", user).status_code in (204, 404, 409)

    @precondition(lambda self: self.avatars or self.generations)
    @rule(pick=st.integers(0, 50), app=st.sampled_from(APPS), event=st.sampled_from(EVENTS),
          foreign=st.integers(0, 3).map(lambda n: n == 0))
    def record_usage(self, pick, app, event, foreign, ready=False):
        known = self.known_avatars(ready_only=ready)
        user, aid = known[pick % len(known)]
        member = False
        if foreign:  # another user names this avatar: 404 and nothing changes, unless they are a member
            from chalicelib.avatars import store as avatar_store

            avatar = avatar_store.get(user, aid, consistent=True)
            user = next(u for u in USERS if u != user)
            member = avatar is not None and user in self.members.get(avatar.project_id, {})
        response = self.call("post", f"/avatars/{aid}/usage", user,
                             {"eventId": event, "appId": app, "appName": app.title(), "action": "use"})
        assert response.status_code in (200, 201, 404, 409), response.body
        if foreign and not member:
            assert response.status_code == 404

    # Uses and deletes of ready avatars are where counters can drift: weighted up by a second rule each.
    @precondition(lambda self: self.avatars or self.generations)
    @rule(pick=st.integers(0, 50), app=st.sampled_from(APPS), event=st.sampled_from(EVENTS))
    def record_usage_of_a_ready_avatar(self, pick, app, event):
        self.record_usage(pick, app, event, False, ready=True)

    @precondition(lambda self: self.avatars or self.generations)
    @rule(pick=st.integers(0, 50))
    def delete_a_ready_avatar(self, pick):
        self.delete_avatar(pick, ready=True)

    @precondition(lambda self: self.avatars or self.generations)
    @rule(pick=st.integers(0, 50), name=st.sampled_from(["A", "B", "C"]), crop=st.booleans(),
          foreign=st.integers(0, 4).map(lambda n: n == 0))
    def edit_avatar(self, pick, name, crop, foreign):
        """Names repeat, so some edits change nothing (no version); a crop needs a ready image (409)."""
        user, aid = self.known_avatars(ready_only=True)[pick % len(self.known_avatars(ready_only=True))]
        change = {"name": name, "personaAge": 20 + pick % 3}
        if crop:
            change["crop"] = {"x": 0, "y": 0, "size": 16 + pick % 2}
        # foreign: someone who is no member of any project (bob may be a member of alice's, issue 30)
        caller = STRANGER if foreign else user
        response = self.call("put", f"/avatars/{aid}", caller, change)
        assert response.status_code in ((404,) if foreign else (200, 404, 409)), response.body

    @precondition(lambda self: self.avatars or self.generations)
    @rule(pick=st.integers(0, 50), number=st.integers(1, 4), twice=st.booleans())
    def restore_version(self, pick, number, twice):
        user, aid = self.known_avatars(ready_only=True)[pick % len(self.known_avatars(ready_only=True))]
        answers = [self.call("post", f"/avatars/{aid}/versions/{number}/restore", user) for _ in range(2 if twice else 1)]
        assert all(a.status_code in (200, 404, 409) for a in answers), [a.body for a in answers]
        if twice and answers[1].status_code == 200 and answers[0].status_code == 200:
            assert answers[1].json_body["version"] is None  # the second click restores nothing

    @precondition(lambda self: self.avatars or self.generations)
    @rule(pick=st.integers(0, 50))
    def share(self, pick):
        user, aid = self.known_avatars(ready_only=True)[pick % len(self.known_avatars(ready_only=True))]
        response = self.call("post", f"/avatars/{aid}/shares", user, {"expiresIn": 3600})
        assert response.status_code in (201, 404, 409), response.body
        if response.status_code == 201:
            self.shares.append((user, response.json_body["id"]))

    @precondition(lambda self: self.avatars or self.generations)
    @rule(pick=st.integers(0, 50), whole_project=st.booleans())
    def export(self, pick, whole_project):
        if whole_project:
            user, pid = self.projects[pick % len(self.projects)]
            path = f"/projects/{pid}/export"
        else:
            user, aid = self.known_avatars(ready_only=True)[pick % len(self.known_avatars(ready_only=True))]
            path = f"/avatars/{aid}/export"
        response = self.call("post", path, user)
        assert response.status_code in (202, 404, 409, 429), response.body

    @precondition(lambda self: self.shares)
    @rule(pick=st.integers(0, 50))
    def revoke(self, pick):
        user, sid = self.shares[pick % len(self.shares)]
        assert self.call("delete", f"/shares/{sid}", user).status_code in (204, 404)

    @rule(answers=st.lists(st.sampled_from(["ok", "503", "429", "400", "garbage"]), min_size=1, max_size=3))
    def provider_answers(self, answers):
        _flux.script = answers + ["ok"]

    # ---- the workers ---------------------------------------------------------------------------

    @rule(worker=st.sampled_from(sorted(WORKERS)), duplicate=st.booleans(), reverse=st.booleans())
    def deliver(self, worker, duplicate, reverse):
        """One batch of the worker's queue: maybe handled twice (a duplicate delivery), maybe in
        reverse order; a record that fails becomes visible again at once (as after its timeout)."""
        from tests.support.generation import feeder

        f = feeder()
        source = next(s for s in f.sources if s.name == worker)
        messages = self.sqs.receive_message(QueueUrl=source.queue_url, MaxNumberOfMessages=source.batch_size,
                                            WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return
        if reverse:
            messages.reverse()
        for _ in range(2 if duplicate else 1):
            f.invoke(source, messages)
        for m in messages:
            try:
                self.sqs.change_message_visibility(QueueUrl=source.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                   VisibilityTimeout=0)
            except self.sqs.exceptions.ClientError:
                pass  # handled and deleted

    @rule()
    def sweep_after_deadlines(self):
        from chalicelib import clock
        from chalicelib.dependencies import get_deps
        from chalicelib.housekeeping.sweeper import sweep

        deps = get_deps()
        sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, now=clock.now() + timedelta(hours=2))

    def settle(self) -> None:
        """Drain every queue (failures made visible again), as time passing would."""
        for _ in range(40):
            busy = False
            for worker in sorted(WORKERS):
                url = self.outputs[WORKERS[worker]]
                attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                if int(attrs["Attributes"]["ApproximateNumberOfMessages"]):
                    busy = True
                    self.deliver(worker, duplicate=False, reverse=False)
            if not busy:
                return

    # ---- invariants ----------------------------------------------------------------------------

    @invariant()
    def no_server_errors(self):
        assert not self.server_errors, self.server_errors

    @invariant()
    def counters_and_parents_hold(self):
        from infra.audit import check_user, load_user, started_elsewhere

        datas = [load_user(user) for user in MEMBER_POOL]
        elsewhere = started_elsewhere(datas)
        for data in datas:
            findings = [f for f in check_user(data, elsewhere=elsewhere[data.user_id])
                        if f.kind in ("counter", "orphan", "version")]
            assert not findings, [str(f) for f in findings]

    @invariant()
    def nothing_outlives_its_avatar(self):
        from infra.audit import check_gone

        known = self.avatars + [(u, "ava_" + g.split("_", 1)[1]) for u, g in self.generations]
        for user in USERS:
            findings = check_gone(user, sorted({a for u, a in known if u == user}),
                                  sorted({p for u, p in self.projects if u == user}))
            assert not findings, [str(f) for f in findings]

    @invariant()
    def a_removed_member_reads_nothing(self):
        for pid, user in sorted(self.removed):
            if any(p == pid and u == user for u, p in self.projects):
                continue  # their own project
            response = self.call("get", f"/projects/{pid}", user)
            assert response.status_code == 404, (pid, user, response.status_code)
            avatars = self.call("get", f"/projects/{pid}/avatars", user)
            assert avatars.status_code == 404, (pid, user, avatars.status_code)

    @invariant()
    def provider_is_billed_once_per_paid_claim(self):
        ok_by_seed = Counter(r["json"]["parameters"]["seed"] for r in _flux.requests if r["answer"] == "ok")
        paid_by_seed: Counter = Counter()
        for gid, seed in self.seed_of.items():
            paid_by_seed[seed] += self.paid_claims[gid]
        for seed, count in ok_by_seed.items():
            assert count <= paid_by_seed[seed], f"seed {seed}: {count} images made, {paid_by_seed[seed]} paid for"

    def check_files_when_settled(self):
        from chalicelib.dependencies import get_deps
        from infra.audit import check_user, load_user

        self.settle()
        for user in USERS:
            data = load_user(user)
            from infra.audit import _quiet

            if _quiet(data) and not data.tombstones:
                findings = [f for f in check_user(data, storage=get_deps().storage) if f.kind == "file"]
                assert not findings, [str(f) for f in findings]


@pytest.fixture(scope="module")
def flux_server():
    global _flux
    with FakeFlux(["ok"], retry_after=0) as fake:
        _flux = fake
        yield fake
    _flux = None


class SettledService(Service):
    """The same machine, but every example ends by draining every queue: then nothing may be left
    in a file that no avatar points at."""

    def teardown(self) -> None:
        try:
            self.check_files_when_settled()
        finally:
            super().teardown()


@pytest.mark.timeout(1800)
def test_invariants_hold_under_random_histories(flux_server):
    import hypothesis.stateful

    hypothesis.stateful.run_state_machine_as_test(SettledService, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=not os.environ.get("INVARIANT_RANDOM"),
        suppress_health_check=list(HealthCheck), database=None))
