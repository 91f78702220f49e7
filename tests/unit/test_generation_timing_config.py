"""The generation job's timings, read from where they are set — infra/resources.json (the worker's
timeout, the queue's visibility timeout, the attempts, the queue-age alarm), .chalice/config.json (the
timeout the local stack gives the worker) and Settings (lease, deadlines, backoff, provider and
classifier timeouts) — and the relations between them that docs/architecture.md ("Timing") relies on.
Change one number and the relation it breaks fails here, by name."""
from __future__ import annotations

import pytest

from chalicelib.config import Settings
from chalicelib.generation import worker
from chalicelib.generation.spec import MAX_IMAGES
from tests.support.infra import load_chalice_config, load_resources, merged_template

TEMPLATE = load_resources()
RESOURCES = TEMPLATE["Resources"]
SETTINGS = Settings()

WORKER_TIMEOUT = RESOURCES["GenerationWorker"]["Properties"]["Timeout"]
VISIBILITY = RESOURCES["GenerationQueue"]["Properties"]["VisibilityTimeout"]
ATTEMPTS = int(TEMPLATE["Parameters"]["GenerationMaxAttempts"]["Default"])


def test_the_numbers_are_the_documented_ones():
    """docs/architecture.md and docs/operations.md quote these; change them there too."""
    assert (WORKER_TIMEOUT, VISIBILITY, ATTEMPTS) == (120, 720, 3)
    assert (SETTINGS.generation_lease_seconds, SETTINGS.generation_deadline_seconds,
            SETTINGS.generation_max_queue_seconds) == (180, 3600, 6 * 3600)
    assert SETTINGS.generation_backoff_seconds == (10.0, 100.0)
    assert (SETTINGS.flux_timeout_seconds, SETTINGS.safety_timeout_seconds, worker.SAVE_SECONDS) == (60.0, 30.0, 10.0)


def test_the_queue_hides_a_message_for_at_least_six_worker_timeouts():
    """Lambda's advice for SQS event sources; a run is never outlived by its own message's visibility
    being shorter than the run (nothing extends the visibility while a job runs)."""
    assert VISIBILITY >= 6 * WORKER_TIMEOUT


def test_a_runs_lease_outlasts_the_worker_timeout():
    """The lease is written once, by the claim, and never renewed: a run that is still alive always
    holds it, so a second delivery can never take over a live run's job."""
    assert SETTINGS.generation_lease_seconds > WORKER_TIMEOUT


def test_a_dead_runs_lease_has_ended_when_its_message_comes_back():
    """A run that dies leaves its message invisible for the visibility timeout; when it comes back the
    lease is over, so it takes the job over at once instead of spending a receive waiting for it."""
    assert SETTINGS.generation_lease_seconds < VISIBILITY


def test_one_image_fits_in_one_invocation():
    """The worker starts an image only with time for the provider's timeout, the classifier's and
    saving (worker.image_seconds): were that more than the function's timeout, no run could ever
    start an image and every job would be handed on until its deadline."""
    budget = SETTINGS.flux_timeout_seconds + SETTINGS.safety_timeout_seconds + worker.SAVE_SECONDS
    assert budget < WORKER_TIMEOUT
    real = Settings(generation_provider="hf")  # not the offline placeholder, which has no provider timeout
    assert worker.image_seconds(real, classifier=True) == budget


def test_the_running_deadline_covers_every_attempt_and_every_hand_on():
    """The sweeper fails a claimed job `timed_out` GENERATION_DEADLINE_SECONDS after its first claim. A
    job whose runs die or fail for now may use every attempt, each after its message's visibility
    timeout and the largest backoff, and a job of MAX_IMAGES images may be handed on once per image
    (one invocation each): the deadline must not cut such a job short."""
    worst = ATTEMPTS * (VISIBILITY + max(SETTINGS.generation_backoff_seconds)) + MAX_IMAGES * WORKER_TIMEOUT
    assert SETTINGS.generation_deadline_seconds >= worst


def test_the_attempts_the_template_gives_are_the_settings_default():
    assert ATTEMPTS == SETTINGS.generation_max_attempts


def test_the_queue_deadline_is_longer_than_the_running_one():
    """A job waits in the queue up to GENERATION_MAX_QUEUE_SECONDS (`queue_timeout`), counted from its
    queueing; the running deadline is counted from its first claim and is the shorter one."""
    assert SETTINGS.generation_max_queue_seconds > SETTINGS.generation_deadline_seconds


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_lambda_and_the_local_stack_give_the_worker_the_same_timeout(stage):
    """infra/resources.json sets the deployed timeout (it wins the merge with Chalice's); the local
    stack's feeder takes `lambda_timeout` from .chalice/config.json for the context's remaining time,
    which the worker reads to decide whether one more image fits. The two must be the same number."""
    from local.server import chalice_config  # what the local feeder resolves, by Chalice's own lookup

    assert chalice_config("generation_worker", stage).lambda_timeout == WORKER_TIMEOUT
    packaged = merged_template(stage)["Resources"]["GenerationWorker"]["Properties"]
    assert packaged["Timeout"] == WORKER_TIMEOUT


def test_every_lambda_timeout_in_the_chalice_config_is_the_deployed_one():
    """A function given a `lambda_timeout` (the local stack's) has the same Timeout in infra/, and no
    stage or global value sets one for every function at once."""
    from tests.support.infra import logical_id

    config = load_chalice_config()
    assert "lambda_timeout" not in config and not any("lambda_timeout" in s for s in config["stages"].values())
    scopes = [config["lambda_functions"]] + [s.get("lambda_functions", {}) for s in config["stages"].values()]
    for functions in scopes:
        for name, entry in functions.items():
            if "lambda_timeout" in entry:
                assert entry["lambda_timeout"] == RESOURCES[logical_id(name)]["Properties"]["Timeout"], name


def test_the_queue_age_alarm_watches_the_generation_queue_and_ignores_one_dead_run():
    """GenerationQueueAgeAlarm: the oldest message's age, 3 of 5 minutes. Its default threshold is above
    the longest a healthy job's message lives — one run that died (the message waits out the
    visibility timeout) and every attempt run with every backoff — so one crash alone never says
    "behind"; and far below the queue deadline, so operators hear of a backlog long before jobs fail."""
    alarm = RESOURCES["GenerationQueueAgeAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["GenerationQueue", "QueueName"]}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
        "Maximum", 60, 5, 3)
    assert alarm["Threshold"] == {"Ref": "GenerationQueueAgeAlarmSeconds"}
    threshold = int(TEMPLATE["Parameters"]["GenerationQueueAgeAlarmSeconds"]["Default"])
    steps = SETTINGS.generation_backoff_seconds
    backoffs = sum(steps[min(i, len(steps) - 1)] for i in range(ATTEMPTS - 1))
    assert threshold > VISIBILITY + ATTEMPTS * WORKER_TIMEOUT + backoffs
    assert threshold <= SETTINGS.generation_max_queue_seconds / 4
    assert "GENERATION_MAX_CONCURRENCY" in alarm["AlarmDescription"]  # it says what an operator does


def test_nothing_sets_or_documents_the_removed_heartbeat():
    """The lease is never renewed (issue 25): no setting reads GENERATION_HEARTBEAT_SECONDS, and no
    template, config or document sets or describes it."""
    from tests.support.infra import ROOT

    assert not hasattr(SETTINGS, "generation_heartbeat_seconds")
    paths = [ROOT / "infra" / "resources.json", ROOT / "README.md", ROOT / "bench" / "common.py",
             *(ROOT / ".chalice").glob("*.json"), *(ROOT / "docs").glob("*.md")]
    for path in paths:
        assert "heartbeat_seconds" not in path.read_text().lower(), path


def test_the_timing_constants_of_the_settings_are_the_templates():
    from chalicelib import config, ids

    assert (config.GENERATION_WORKER_TIMEOUT_SECONDS, config.GENERATION_VISIBILITY_SECONDS) == (WORKER_TIMEOUT, VISIBILITY)
    assert config.MAX_IMAGES_PER_JOB == ids.MAX_IMAGES


@pytest.mark.parametrize("attempts", [1, 3, 5, 10])
def test_more_attempts_lengthen_the_running_deadline_to_cover_them(attempts):
    """GenerationMaxAttempts goes up to 10 in the template; the deadline follows it, and stays below the
    queue deadline so a waiting job is still timed out in the queue first."""
    settings = Settings.from_env({"GENERATION_MAX_ATTEMPTS": str(attempts)})
    worst = attempts * (VISIBILITY + max(settings.generation_backoff_seconds)) + MAX_IMAGES * WORKER_TIMEOUT
    assert settings.generation_deadline_seconds >= worst
    assert settings.generation_deadline_seconds >= SETTINGS.generation_deadline_seconds
    assert settings.generation_deadline_seconds < settings.generation_max_queue_seconds


def test_a_deadline_set_in_the_environment_is_kept():
    assert Settings.from_env({"GENERATION_MAX_ATTEMPTS": "10", "GENERATION_DEADLINE_SECONDS": "900"}
                             ).generation_deadline_seconds == 900
