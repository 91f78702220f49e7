"""The job engine under Lambda's and SQS's timing, with time as an input (issue 25).

A hypothesis state machine drives the real generation worker (the app's handler, over moto's
DynamoDB and S3) through a simulated world:

- a clock that only moves when a step moves it, read by each worker with its own skew (±2 s);
- an SQS queue model (messages become visible again exactly when their visibility runs out; a
  receive past maxReceiveCount moves the message to the DLQ) — moto's SQS follows the wall clock;
- Lambda invocations with a 120 s timeout, killed at it (also in the middle of a provider call, and
  at random instants, as an out-of-memory would): after the kill the run makes no call of any kind;
- an image service whose calls take simulated seconds and answer ok, 503 or time out, and a
  classifier that takes simulated seconds (test doubles of the external APIs; the HTTP clients for
  them are tested against the fake FLUX server elsewhere);
- DynamoDB writes that are throttled on demand; a sweeper with its own skew; a backlog that lasts
  longer than a deadline.

After every step: every job is running, queued (its message is in the queue or the DLQ) or ended;
no image that was recorded is asked for again; no job ends queue_timeout/timed_out before its time;
the daily counter counts what the quota rules count, the active counter the active jobs; each made
image is one avatar.
"""
from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from tests.support.moto import mock_aws

from tests.functional.conftest import SECRET, GatewayClient, auth, body
from tests.support import images as img

PREFIX = "/api/apps/avatar-creator"
TIMEOUT = 120  # the generation worker's Lambda timeout (infra/resources.json)
VISIBILITY = 720  # the generation queue's visibility timeout
LEASE = 180
MAX_RECEIVES = 3
# Bounded in make test (12 histories of 30 steps a machine); `make invariants` runs 200 of 40.
EXAMPLES = int(os.environ.get("TIMING_EXAMPLES", "12"))
STEPS = int(os.environ.get("TIMING_STEPS", "30"))
START = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc).timestamp()


class Killed(BaseException):
    """Lambda ended the invocation: nothing after this point runs (not even `finally` writes)."""


class World:
    """The simulated clock, the current invocation's kill time and the throttle switch."""

    def __init__(self) -> None:
        self.t = START
        self.skew = 0.0
        self.kill_at: float | None = None
        self.throttle = 0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t + self.skew, tz=timezone.utc)

    def spend(self, seconds: float) -> None:
        """Time passes inside an invocation; past its kill time the invocation is gone."""
        if self.kill_at is not None and self.t + seconds >= self.kill_at:
            self.t = self.kill_at
            raise Killed()
        self.t += seconds


class QueueModel:
    """An SQS standard queue with exact visibility: visible again at receive + visibility."""

    def __init__(self, world: World, visibility: int) -> None:
        self.world = world
        self.visibility = visibility
        self.messages: dict[str, dict] = {}
        self.dlq: list[dict] = []

    # the calls the app makes (deps.sqs)
    def send_message(self, QueueUrl, MessageBody, DelaySeconds=0, **_):  # noqa: N803
        self.world.spend(0.01)
        mid = uuid.uuid4().hex
        self.messages[mid] = {"id": mid, "body": MessageBody, "visible_at": self.world.t + DelaySeconds,
                              "receives": 0, "receipt": None}
        return {"MessageId": mid}

    def send_message_batch(self, QueueUrl, Entries, **_):  # noqa: N803
        for entry in Entries:
            self.send_message(QueueUrl, entry["MessageBody"])
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility(self, QueueUrl, ReceiptHandle, VisibilityTimeout, **_):  # noqa: N803
        from botocore.exceptions import ClientError

        self.world.spend(0.01)
        for m in self.messages.values():
            if m["receipt"] == ReceiptHandle:
                m["visible_at"] = self.world.t + VisibilityTimeout
                return {}
        raise ClientError({"Error": {"Code": "ReceiptHandleIsInvalid", "Message": "gone"}}, "ChangeMessageVisibility")

    def get_queue_attributes(self, **_):
        return {"Attributes": {"ApproximateNumberOfMessages": str(len(self.messages))}}

    # what the event source mapping does
    def receive(self) -> dict | None:
        visible = sorted((m for m in self.messages.values() if m["visible_at"] <= self.world.t),
                         key=lambda m: m["visible_at"])
        for m in visible:
            m["receives"] += 1
            if m["receives"] > MAX_RECEIVES:
                self.dlq.append(self.messages.pop(m["id"]))
                continue
            m["receipt"] = uuid.uuid4().hex
            m["visible_at"] = self.world.t + self.visibility
            return m
        return None

    def delete(self, message: dict) -> None:
        current = self.messages.get(message["id"])
        if current is not None and current["receipt"] == message["receipt"]:
            del self.messages[message["id"]]

    def jobs_waiting(self) -> Counter:
        return Counter(json.loads(m["body"])["generationId"] for m in [*self.messages.values(), *self.dlq])


class ImageService:
    """The external image API: each call takes simulated seconds, then answers per the script."""

    def __init__(self, world: World, machine: "JobTiming") -> None:
        self.world, self.machine = world, machine
        self.script: list[tuple[str, float]] = []
        self.calls: list[tuple[str, int]] = []  # (generation id, image index)
        self.name = "sim"

    def generate(self, request):
        from chalicelib.generation.providers import ProviderError

        gid, index = self.machine.image_of_seed[request.seed]
        self.machine.check_not_made(gid, index)
        self.calls.append((gid, index))
        answer, seconds = self.script.pop(0) if self.script else ("ok", 5.0)
        if answer == "hang":  # the client's timeout ends the call
            self.world.spend(60.0)
            raise ProviderError("The image service did not answer in time", retryable=True, code="provider_timeout")
        self.world.spend(seconds)
        if answer == "503":
            raise ProviderError("The image service is unavailable (HTTP 503)", retryable=True, status=503)
        return img.png(32, 32)


def make_classifier(world: World):
    from chalicelib.generation import safety

    class Classifier(safety.Checker):
        """The external classifier: takes simulated seconds, flags nothing."""
        state = "checked"
        refusal = None

        def __init__(self) -> None:  # no HTTP client: this stands in for the service behind it
            pass

        def flagged(self, image: bytes) -> bool:
            world.spend(2.0)
            return False

    return Classifier()


class JobTiming(RuleBasedStateMachine):
    visibility = VISIBILITY

    def __init__(self) -> None:
        super().__init__()
        from chalicelib import clock, dependencies
        from chalicelib.generation import safety
        from chalicelib.aws import session
        from local.provision import provision

        self._env = dict(os.environ)
        self._mock = mock_aws()
        self._mock.start()
        self.world = World()
        self.queue = QueueModel(self.world, self.visibility)
        self.images = ImageService(self.world, self)
        outputs = provision(endpoint_url=None, region="us-east-1")
        os.environ.update({
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1", "JWT_SECRET": SECRET, "STAGE": "test", "TABLE_NAME": outputs["TableName"],
            "UPLOAD_BUCKET": outputs["UploadBucket"], "GENERATION_QUEUE_URL": "sim://generations",
            "CLEANUP_QUEUE_URL": outputs["CleanupQueueUrl"], "GENERATION_PROVIDER": "hf", "HF_TOKEN": "hf_test",
            "FLUX_ENDPOINT_URL": "http://127.0.0.1:9/unused", "GENERATION_MAX_ATTEMPTS": str(MAX_RECEIVES),
            "GENERATION_LEASE_SECONDS": str(LEASE), "GENERATION_BACKOFF_SECONDS": "10,100",
            "GENERATION_DAILY_LIMIT": "1000", "GENERATION_ACTIVE_LIMIT": "20",
        })
        os.environ.pop("AWS_ENDPOINT_URL", None)
        dependencies.reset()
        self._patches: list[tuple[object, str, object]] = []
        world, queue, images = self.world, self.queue, self.images
        self._patch(clock, "now", world.now)
        self._patch(safety, "checker_for", lambda settings: make_classifier(world))
        deps_type = type(dependencies.get_deps())
        self._patch(deps_type, "sqs", property(lambda self: queue))
        self._patch(deps_type, "provider", property(lambda self: images))
        self._hook = self._aws_calls
        session.botocore_session().register("before-call", self._hook)
        from app import app, generation_worker

        self.worker = generation_worker
        self.client = GatewayClient(app)
        self.jobs: list[str] = []
        self.image_of_seed: dict[int, tuple[str, int]] = {}
        self.ended_early: list[str] = []
        self.pending_since: dict[str, float] = {}  # when the harness first saw each job waiting
        self.seen: dict[str, str] = {}
        self.next_seed = 1000

    def _patch(self, target, name, value) -> None:
        self._patches.append((target, name, target.__dict__[name] if isinstance(target, type) else getattr(target, name)))
        setattr(target, name, value)

    def teardown(self) -> None:
        from chalicelib import dependencies
        from chalicelib.aws import session

        session.botocore_session().unregister("before-call", self._hook)
        for target, name, value in reversed(self._patches):
            setattr(target, name, value)
        self._mock.stop()
        os.environ.clear()
        os.environ.update(self._env)
        dependencies.reset()

    def _aws_calls(self, model=None, params=None, **_):
        """Every AWS call of the app: takes a few simulated milliseconds, never runs after a kill, and
        DynamoDB writes fail with a throttle while the switch is on."""
        from botocore.exceptions import ClientError

        if self.world.kill_at is None:
            return None
        self.world.spend(0.02)
        if self.world.throttle and model.name in ("UpdateItem", "TransactWriteItems", "PutItem"):
            self.world.throttle -= 1
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                              model.name)
        return None

    # ---- the user ----------------------------------------------------------------------------------

    @initialize()
    def a_project(self):
        response = self.client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "P"}))
        self.project = response.json_body["id"]

    @precondition(lambda self: len(self.jobs) < 4)
    @rule(images=st.integers(1, 4))
    def start_job(self, images):
        seed = self.next_seed
        self.next_seed += 10
        response = self.client.http.post(f"{PREFIX}/projects/{self.project}/avatars/generate", headers=auth(),
                                         body=body({"prompt": "a portrait", "name": "G", "width": 256, "height": 256,
                                                    "seed": seed, "numImages": images}))
        assert response.status_code == 202, response.body
        gid = response.json_body["id"]
        self.jobs.append(gid)
        for i in range(images):
            self.image_of_seed[seed + i] = (gid, i)

    @rule(answers=st.lists(st.tuples(st.sampled_from(["ok", "ok", "503", "hang"]), st.sampled_from([1.0, 5.0, 30.0, 59.0])),
                           min_size=1, max_size=4))
    def the_image_service_answers(self, answers):
        self.images.script = list(answers)

    @rule(writes=st.integers(1, 3))
    def writes_are_throttled(self, writes):
        self.world.throttle = writes

    # ---- time and the platform ---------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, LEASE - 1, LEASE, LEASE + 1, VISIBILITY - 1, VISIBILITY, VISIBILITY + 1, 100]))
    def time_passes(self, seconds):
        self.world.t += seconds

    @precondition(lambda self: self.queue.messages)
    @rule(pick=st.integers(0, 20))
    def sqs_delivers_a_message_twice(self, pick):
        """At-least-once: a copy of a message, visible now (a standard queue may do this any time)."""
        original = list(self.queue.messages.values())[pick % len(self.queue.messages)]
        copy = {**original, "id": uuid.uuid4().hex, "visible_at": self.world.t, "receives": 0, "receipt": None}
        self.queue.messages[copy["id"]] = copy

    @precondition(lambda self: self.jobs)
    @rule(pick=st.integers(0, 20), offset=st.sampled_from([-1, 0, 1]))
    def time_reaches_a_lease_end(self, pick, offset):
        """The clock stops exactly at a running job's lease end, one second before or one after."""
        job = self.job(self.jobs[pick % len(self.jobs)])
        if job.lease_until is not None and int(job.lease_until) + offset > self.world.t:
            self.world.t = int(job.lease_until) + offset

    @precondition(lambda self: self.queue.messages)
    @rule()
    def time_reaches_the_next_message(self):
        """The clock moves to the moment the next message becomes visible (an exact boundary)."""
        self.world.t = max(self.world.t, min(m["visible_at"] for m in self.queue.messages.values()))

    @rule(worker_skew=st.sampled_from([-2.0, -1.0, 0.0, 1.0, 2.0]),
          dies_after=st.one_of(st.none(), st.sampled_from([0.5, 6.0, 40.0, 61.0])))
    def a_worker_takes_a_message(self, worker_skew, dies_after):
        """One Lambda invocation of the generation worker: killed at its timeout, or earlier (a crash)."""
        message = self.queue.receive()
        if message is None:
            return
        from local.feeder import lambda_sqs_record

        world = self.world
        world.skew = worker_skew
        world.kill_at = world.t + (TIMEOUT if dies_after is None else min(TIMEOUT, dies_after))
        deadline = world.t + TIMEOUT

        class Context:
            function_name = "generation_worker"
            aws_request_id = uuid.uuid4().hex
            memory_limit_in_mb = 1024
            invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:generation_worker"

            def get_remaining_time_in_millis(self):
                return max(0, int((deadline - world.t) * 1000))

        record = lambda_sqs_record({"MessageId": message["id"], "ReceiptHandle": message["receipt"],
                                    "Body": message["body"], "Attributes": {}}, "arn:aws:sqs:us-east-1:1:gen", "us-east-1")
        try:
            result = self.worker({"Records": [record]}, Context())
        except Killed:
            return
        finally:
            world.kill_at = None
            world.skew = 0.0
            world.throttle = 0
        if not result.get("batchItemFailures"):
            self.queue.delete(message)

    @rule(sweeper_skew=st.sampled_from([-2.0, 2.0]))
    def the_sweeper_runs(self, sweeper_skew):
        from chalicelib.dependencies import get_deps
        from chalicelib.housekeeping.sweeper import sweep

        self.world.skew = sweeper_skew
        try:
            deps = get_deps()
            sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, files=False)
        finally:
            self.world.skew = 0.0

    @rule()
    def the_dlq_consumer_runs(self):
        from chalicelib.generation import jobs
        from chalicelib.dependencies import get_deps

        while self.queue.dlq:
            message = self.queue.dlq.pop(0)
            body_ = json.loads(message["body"])
            jobs.dead_letter(get_deps().dynamodb, body_["userId"], body_["generationId"])

    @precondition(lambda self: self.jobs)
    @rule()
    def the_queue_backs_up_past_the_queue_deadline(self):
        """Nothing is delivered for longer than GENERATION_MAX_QUEUE_SECONDS; then the sweeper runs."""
        self.world.t += 6 * 3600 + 5
        self.the_sweeper_runs(0.0)

    # ---- invariants --------------------------------------------------------------------------------

    def check_not_made(self, gid: str, index: int) -> None:
        job = self.job(gid)
        slots = [dict(s.as_dict() if hasattr(s, "as_dict") else s) for s in (job.slots or [])]
        assert not (slots and slots[index]["state"] == "done"), f"{gid} image {index} asked for after it was made"

    def track(self, gid: str):
        """The job, noting when it (last) started waiting in the queue."""
        job = self.job(gid)
        if job.status == "pending" and self.seen.get(gid) != "pending":
            self.pending_since[gid] = self.world.t
        self.seen[gid] = job.status
        return job

    def job(self, gid: str):
        from chalicelib.aws.models import META, GenerationModel, generation_pk

        return GenerationModel.get(generation_pk("alice", gid), META, consistent_read=True)

    @invariant()
    def every_job_runs_waits_or_has_ended(self):
        waiting = self.queue.jobs_waiting()
        for gid in self.jobs:
            job = self.track(gid)
            if job.status in ("pending", "processing"):
                assert waiting[gid] > 0, f"{gid} is {job.status} with no message: dropped"

    @invariant()
    def no_job_ends_before_its_time(self):
        for gid in self.jobs:
            job = self.track(gid)
            if job.error_code == "queue_timeout" and gid not in self.ended_early:
                self.ended_early.append(gid)
                waited = self.world.t - self.pending_since[gid]
                assert waited >= 6 * 3600 - 2, (gid, waited)
            if job.error_code == "timed_out" and gid not in self.ended_early:
                self.ended_early.append(gid)
                ran = self.world.t - datetime.fromisoformat(job.started_at).timestamp()
                assert ran >= 3600 - 2, (gid, ran)

    @invariant()
    def counters_count_what_the_rules_count(self):
        from chalicelib.aws.models import META, STATS, AvatarModel, UserDayModel, UserStatsModel, avatar_pk, user_pk
        from chalicelib.generation.quota import USER_CAUSED

        charged: Counter = Counter()
        active = 0
        for gid in self.jobs:
            job = self.job(gid)
            slots = [dict(s.as_dict() if hasattr(s, "as_dict") else s) for s in (job.slots or [])]
            n = len(slots) or int(job.request.as_dict().get("numImages") or 1)
            if job.status in ("pending", "processing"):
                active += 1
                charged[job.quota_day] += n
            else:
                charged[job.quota_day] += sum(1 for s in slots if s["state"] == "done"
                                              or (s["state"] == "failed" and s.get("code") in USER_CAUSED))
            for i, s in enumerate(slots):
                if s["state"] == "done":
                    assert AvatarModel.count(avatar_pk("alice", s["avatarId"]), AvatarModel.sk == META) == 1
        for day, count in charged.items():
            try:
                recorded = int(UserDayModel.get(user_pk("alice"), day).generations or 0)
            except UserDayModel.DoesNotExist:
                recorded = 0
            assert recorded == count, (day, recorded, count)
        stats = UserStatsModel.get(user_pk("alice"), STATS)
        assert int(stats.active_generations or 0) == active

    @invariant()
    def no_image_is_paid_twice_once_made(self):
        made = Counter(self.images.calls)
        for (gid, index), calls in made.items():
            job = self.job(gid)
            slots = job.slots or []
            if slots and dict(slots[index].as_dict() if hasattr(slots[index], "as_dict") else slots[index])["state"] == "done":
                pass  # check_not_made refuses any call after the record; repeated calls before it were unfinished
            assert calls <= MAX_RECEIVES * 3, (gid, index, calls)


class MessagesBackAtTheLeaseEnd(JobTiming):
    """A queue whose visibility equals the lease (as the old heartbeat made it): a killed run's
    message comes back in the very second its lease ends."""
    visibility = LEASE


@pytest.mark.slow  # a state-machine run: `make test` runs it, `make test-fast` leaves it out
@pytest.mark.timeout(900)
@pytest.mark.parametrize("machine", [JobTiming, MessagesBackAtTheLeaseEnd], ids=["visibility-720", "visibility-lease"])
def test_jobs_hold_under_lambda_and_sqs_timing(machine):
    import hypothesis.stateful

    hypothesis.stateful.run_state_machine_as_test(machine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
        derandomize=not os.environ.get("TIMING_RANDOM"), suppress_health_check=list(HealthCheck), database=None))


# ---- the reviewed cases, step by step (the same world, no search) -----------------------------------

def _drive(machine: JobTiming, *, until_ended: str, skew: float = 0.0, rounds: int = 20) -> None:
    for _ in range(rounds):
        if machine.job(until_ended).status in ("completed", "failed", "cancelled"):
            return
        machine.time_reaches_the_next_message()
        machine.a_worker_takes_a_message(skew, None)
        machine.every_job_runs_waits_or_has_ended()
        machine.counters_count_what_the_rules_count()


@pytest.fixture
def machine_of():
    made = []

    def make(cls):
        machine = cls()
        machine.a_project()
        made.append(machine)
        return machine

    yield make
    for machine in made:
        machine.teardown()


def test_a_message_back_in_the_last_second_of_a_lease_is_not_dropped(machine_of):
    """Issue 25 item 1: a killed run's message returns exactly when its lease ends; the delivery
    takes the job over (or comes back), never `skipped`."""
    machine = machine_of(MessagesBackAtTheLeaseEnd)
    machine.start_job(1)
    gid = machine.jobs[0]
    machine.a_worker_takes_a_message(0.0, 0.5)  # claimed, then killed
    assert machine.job(gid).status == "processing"
    machine.time_reaches_the_next_message()
    assert int(machine.job(gid).lease_until) == int(machine.world.t)  # the lease's last second
    machine.a_worker_takes_a_message(0.0, None)
    machine.every_job_runs_waits_or_has_ended()
    _drive(machine, until_ended=gid)
    assert machine.job(gid).status == "completed"


def test_a_slow_provider_hands_the_job_on_and_pays_each_image_once(machine_of):
    """Issue 25 item 2: four 59 s images in a 120 s function: each run starts only the calls it can
    finish, hands the rest on without using up a receive, and no image is asked for twice."""
    machine = machine_of(JobTiming)
    machine.start_job(4)
    gid = machine.jobs[0]
    machine.images.script = [("ok", 59.0)] * 4
    _drive(machine, until_ended=gid)
    job = machine.job(gid)
    assert (job.status, int(job.images_made), int(job.attempts)) == ("completed", 4, 1)
    assert sorted(machine.images.calls) == [(gid, i) for i in range(4)]
    assert not machine.queue.dlq
