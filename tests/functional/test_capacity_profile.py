"""The capacity profile (bench/capacity_profile.py) records what the handlers really do over moto:
the keys each operation touches, the units they cost, S3 bytes, SQS messages, provider calls."""
from __future__ import annotations

from collections import Counter

import pytest

from bench.capacity_profile import record_profile


@pytest.fixture(scope="module")
def profile():
    return record_profile()


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
