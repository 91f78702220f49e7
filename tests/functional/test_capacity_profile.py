"""The capacity profile (bench/capacity_profile.py) records what the handlers really do over moto:
the keys each operation touches, the units they cost, S3 bytes, SQS messages, provider calls, the
stream worker on what each operation wrote, webhook deliveries, GSI3 writes, a job's hand-on.

One recording serves every test here, made without the repeated runs that only steady the handlers'
measured time (timing=False): the tests check calls, not times."""
from __future__ import annotations

from collections import Counter

import pytest

from bench.capacity_profile import record_profile


@pytest.fixture(scope="module")
def profile():
    return record_profile(timing=False)


def keys(op, kind):
    return Counter((t["index"], t["pk"], t["sk"]) for t in op["touches"] if t["kind"] == kind)


def test_a_batch_of_usage_events_is_one_transaction_with_each_counter_written_once(profile):
    # The recorded batch: 10 events of one avatar over 3 apps (issue 32: counters aggregated per batch)
    op = profile["ops"]["usage_worker (per event)"]
    assert op["per"] == 10 and op["requests"] == {"dynamodb.TransactWriteItems": 1}
    writes = keys(op, "write")
    assert writes == Counter({(None, "U#{uid}#EVT#{app}#{eid}", "EVT"): 10,
                              (None, "U#{uid}#A#{aid}#H#{n}", "USE#{ts}#{app}#{eid}"): 10,
                              (None, "U#{uid}#A#{aid}", "META"): 1, (None, "U#{uid}#A#{aid}", "APP#{app}"): 3,
                              (None, "U#{uid}#A#{aid}#D", "{day}#{app}"): 3,  # issue 29: per app, per day
                              (None, "U#{uid}", "APPUSE#{app}"): 3, (None, "U#{uid}", "STATS"): 1,
                              ("GSI1", "U#{uid}#P#{pid}", "A#{aid}"): 1})
    stats = [t for t in op["touches"] if t["sk"] == "STATS"]
    assert all(t["units"] == 2 and t["transactional"] for t in stats)  # small item, transactional: 2 units
    assert all(t["created"] for t in op["touches"] if t["sk"] == "EVT")


def test_a_cached_gallery_load_makes_no_call_and_a_refresh_reads_the_preset_partition(profile):
    assert profile["ops"]["GET /presets"]["requests"] == {}
    refresh = profile["ops"]["gallery cache refresh"]
    assert refresh["requests"] == {"dynamodb.Query": 1}
    assert {(t["pk"], t["sk"]) for t in refresh["touches"]} == {("PRESET", "{category}#{preset}")}
    assert sum(t["units"] for t in refresh["touches"]) >= 0.5


def test_stats_read_the_counters_and_seven_days(profile):
    reads = keys(profile["ops"]["GET /stats"], "read")
    assert reads[(None, "U#{uid}", "STATS")] == 1 and reads[(None, "U#{uid}", "DAY#{day}")] == 7


def test_uploads_and_generations_store_bytes_and_call_the_provider_once(profile):
    ops = profile["ops"]
    assert ops["browser POST to S3"]["s3_put_bytes"] == {"uploads/": profile["upload_bytes"]}
    worker = ops["upload_worker (per upload)"]
    assert worker["requests"]["s3.PutObject"] == 3  # image, thumbnail, display copy and worker["s3_put_bytes"]["images/"] > 100_000
    generation = ops["generation_worker (per generation)"]
    assert generation["provider_calls"] == 1 and generation["provider_megapixels"] == pytest.approx(768 * 1024 / 1e6)
    assert ops["POST /projects/{id}/avatars/generate"]["sqs"] == {"SendMessageBatch avatar-creator-generations": 1}  # one call for every job a request starts


def test_the_stream_worker_publishes_only_what_apps_are_told(profile):
    ops = profile["ops"]
    # A generation: its avatar became ready and the job completed — two events, one PutEvents each,
    # one Query of the user's webhooks, one of the project's members (issue 30: a shared project's
    # members' webhooks hear of it too; none here), one webhook message per event (one webhook).
    gen = ops["stream_worker (generation_worker (per generation))"]
    assert gen["events_published"] == {"avatar.ready": 1, "generation.completed": 1}
    assert gen["requests"] == {"events.PutEvents": 2, "dynamodb.Query": 2, "sqs.SendMessageBatch": 2}
    assert ops["stream_worker (upload_worker (per upload))"]["events_published"] == {"avatar.ready": 1}
    # Usage counters, markers, history rows, rate windows, file intents: records, but no event.
    for name in ("usage_worker (per event)", "POST /avatars/{id}/usage", "POST /projects/{id}/avatars/generate"):
        assert ops[name]["stream"]["records"] > 0
        assert not ops[f"stream_worker ({name})"]["events_published"]
        assert ops[f"stream_worker ({name})"]["requests"] == {}
    assert ops["usage_worker (per event)"]["stream"]["records"] == 31  # 10 markers, 10 rows, 11 counters


def test_a_webhook_delivery_is_one_post_and_a_failed_attempt_queues_the_next(profile):
    ok, failed = profile["ops"]["webhook_worker (per delivery)"], profile["ops"]["webhook_worker (per failed attempt)"]
    assert ok["http_out"] == 1 and failed["http_out"] == 1 and failed["http_failed"]
    assert ok["requests"]["dynamodb.BatchGetItem"] == 1 and "sqs.SendMessageBatch" not in ok["requests"]
    assert failed["sqs"] == {"SendMessageBatch avatar-creator-webhooks": 1}


def test_gsi3_is_written_when_its_keys_change_and_a_long_job_is_handed_on(profile):
    worker = profile["ops"]["generation_worker (per generation)"]
    gsi3 = Counter(t["pk"] for t in worker["touches"] if t["index"] == "GSI3")
    # the claim moves the job's deadline (old entry out, new in), the finish takes it out; 3 file intents
    assert gsi3 == Counter({"SWEEP#{n}": 3, "FILES#{n}": 3})
    assert all(t["units"] == 1 for t in worker["touches"] if t["index"] == "GSI3")  # keys only: small
    job = profile["ops"]["generation_worker (job of 4 images)"]
    assert job["provider_calls"] == 4 and job["runs"] == 2
    assert job["sqs"] == {"SendMessage avatar-creator-generations": 1}  # the hand-on message
    assert profile["ops"]["stream_worker (generation_worker (job of 4 images))"]["events_published"] == {
        "avatar.ready": 4, "generation.completed": 1}
