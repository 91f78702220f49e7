"""The capacity model's arithmetic (bench/capacity.py) on a small profile whose answers are known."""
from __future__ import annotations

import math

import pytest

from bench import capacity
from bench.capacity import DAY, Model, Traffic, scope, zipf_top_share
from bench.capacity_profile import Namer, item_size, read_units, write_units
from chalicelib.config import Settings


def touch(pk, sk, kind, units, *, index=None, size=100, created=False):
    return {"index": index, "pk": pk, "sk": sk, "kind": kind, "units": units, "bytes": size,
            "transactional": units >= 2, "created": created}


def op(function, touches=(), *, seconds=0.05, per=1, requests=None, provider_calls=0, urls=0, s3=None):
    return {"function": function, "per": per, "touches": list(touches), "requests": requests or {},
            "seconds": seconds, "aws_seconds": 0.0, "s3_put_bytes": s3 or {}, "s3_deleted_objects": 0,
            "sqs": {}, "provider_calls": provider_calls, "provider_megapixels": 1.0, "image_urls": urls}


def small_profile():
    """One usage event: 2 units on the user's STATS, 2 on the avatar's META, 2 on a unique marker.
    The gallery: a refresh reads 2.5 units of PRESET; a cached load reads nothing."""
    usage = [touch("U#{uid}", "STATS", "write", 20.0), touch("U#{uid}#A#{aid}", "META", "write", 20.0),
             touch("U#{uid}#EVT#{eid}", "EVT", "write", 20.0, created=True, size=900)]
    return {"presets": 10, "preset_categories": 2, "ops": {
        "usage_worker (per event)": op("usage_worker", usage, seconds=0.5, per=10,
                                       requests={"dynamodb.TransactWriteItems": 10}),
        "gallery cache refresh": op("api_handler", [touch("PRESET", "{category}#{preset}", "read", 2.5)]),
        "GET /presets": op("api_handler", seconds=0.1),
        "generation_worker (per generation)": op("generation_worker", provider_calls=1, seconds=0.0),
    }}


FUNCTIONS = {"api_handler": {"memory_mb": 1024, "max_concurrency": None},
             "usage_worker": {"memory_mb": 512, "max_concurrency": 5},
             "generation_worker": {"memory_mb": 1024, "max_concurrency": 2},
             "jwt_auth": {"memory_mb": 512, "max_concurrency": None}}

# 1 usage event (all on the queue) and 1 gallery load per active user per day, no peak: with
# 86,400 active users each operation runs once per second.
TRAFFIC = Traffic(active_share=1.0, peak_factor=1.0, sessions=1.0, per_session={"GET /presets": 1.0},
                  uploads=0.0, generations=0.0, usage_events=1.0, usage_http_share=0.0)


def model(**kwargs):
    return Model(small_profile(), kwargs.pop("traffic", TRAFFIC), FUNCTIONS, Settings(), **kwargs)


def test_item_size_and_units_follow_dynamodb_rules():
    # "PK"(2) + "U#a"(3) + "n"(1) + 12345 (5 significant digits → 3 + 1 bytes) = 10
    assert item_size({"PK": {"S": "U#a"}, "n": {"N": "12345"}}) == 10
    assert item_size({"m": {"M": {"ab": {"S": "xyz"}}}}) == 1 + 3 + (2 + 3 + 1)
    assert read_units(4096, consistent=True) == 1 and read_units(4097, consistent=True) == 2
    assert read_units(4097, consistent=False) == 1 and read_units(0, consistent=False) == 0.5
    assert read_units(10, consistent=True, transactional=True) == 2
    assert write_units(1024) == 1 and write_units(1025) == 2 and write_units(1025, transactional=True) == 4


def test_ids_become_placeholders_so_scopes_can_be_told_apart():
    name = Namer("bob", {"exec-1": "professional"}, {})
    assert name("U#bob#A#ava_01HZX") == "U#{uid}#A#{aid}"
    assert name("USE#2026-01-02T03:04:05.678Z#evt-12ab") == "USE#{ts}#{eid}"
    assert name("professional#exec-1") == "{category}#{preset}" and name("DAY#2026-01-02") == "DAY#{day}"
    assert [scope("PRESET"), scope("U#{uid}", "STATS"), scope("U#{uid}#A#{aid}"), scope("U#{uid}#EVT#{eid}"),
            scope("PRESET", "{category}#{preset}")] == ["global", "user", "avatar", "unique", "preset"]


def test_zipf_top_share():
    assert zipf_top_share(1, 1.0) == 1.0
    assert zipf_top_share(2, 1.0) == pytest.approx(1 / 1.5)
    # Past the exact head the tail is integrated: H(n) ≈ ln n + γ.
    assert zipf_top_share(10**7, 1.0) == pytest.approx(1 / (math.log(10**7) + 0.5772), rel=1e-4)
    assert zipf_top_share(1000, 2.0) > zipf_top_share(1000, 1.0)


def test_rates_scale_with_active_users_and_peak():
    m = model()
    assert m.rates(DAY)["usage_worker (per event)"] == pytest.approx(1.0)
    peaked = Model(small_profile(), Traffic(**{**TRAFFIC.__dict__, "peak_factor": 3.0, "active_share": 0.5}),
                   FUNCTIONS, Settings())
    assert peaked.rates(DAY)["usage_worker (per event)"] == pytest.approx(1.5)


def test_hot_keys_take_the_heaviest_users_share_and_skip_unique_keys():
    m = model()
    result = m.run(DAY)
    share = zipf_top_share(DAY, 1.0)
    items = {key: (rd, wr, sc) for _r, _i, key, rd, wr, sc in result.hot_items}
    assert items["U#{uid}/STATS"] == pytest.approx((0.0, 2.0 * share, "user"))
    assert items["U#{uid}#A#{aid}/META"][1] == pytest.approx(2.0 * share)
    assert not any("{eid}" in key for key in items)
    # The table carries everyone: 6 write units per event, 1 event/s.
    assert result.table_units["write"] == pytest.approx(6.0)


def test_gallery_reads_once_per_container_per_ttl_not_per_load():
    m, uncached = model(), model(gallery_cache=False)
    users = 100 * DAY  # 100 gallery loads/s
    rates = m.rates(users)
    api_concurrency = 100 * 0.1  # 100 loads/s × 0.1 s
    assert rates["gallery cache refresh"] == pytest.approx(api_concurrency / m.ttl)
    assert uncached.rates(users)["gallery cache refresh"] == pytest.approx(100.0)
    partitions = {key: rd for _r, _i, key, rd, _w, _s in m.run(users).hot_partitions}
    assert partitions["PRESET"] == pytest.approx(2.5 * api_concurrency / m.ttl)


def test_worker_concurrency_against_its_event_source_cap():
    result = model().run(20 * DAY)  # 20 events/s, 0.05 s each plus a 20 ms transaction
    seconds = 0.5 / 10 + capacity.LATENCY["dynamodb.TransactWriteItems"]
    assert result.concurrency["usage_worker"]["needed"] == pytest.approx(20 * seconds)
    limit = next(r for r in result.limits if r[1] == "usage_worker MaximumConcurrency")
    assert limit[0] == pytest.approx(20 * seconds / 5)


def test_a_users_generations_are_capped_by_the_active_job_limit():
    traffic = Traffic(**{**TRAFFIC.__dict__, "generations": 1000.0})
    m = Model(small_profile(), traffic, FUNCTIONS, Settings(generation_active_limit=5))
    rates = m.rates(DAY)
    top = m.top_user_rates(DAY, rates)
    assert top["generation_worker (per generation)"] == pytest.approx(5 / capacity.PROVIDER_SECONDS)


def test_cost_is_linear_in_users_and_priced_per_unit():
    m = model(traffic=Traffic(**{**TRAFFIC.__dict__, "per_session": {}}))  # usage events only
    one = m.op_cost("usage_worker (per event)")
    assert one["DynamoDB"] == pytest.approx(6 * capacity.PRICES["dynamodb_write_unit"][0])
    small, large = m.monthly_cost(DAY), m.monthly_cost(10 * DAY)
    assert large["DynamoDB"] == pytest.approx(10 * small["DynamoDB"])
    # 30 days × 86,400 events/day × $ per event
    assert small["DynamoDB"] == pytest.approx(30 * DAY * one["DynamoDB"])
    # the marker item is created by each event: 900 bytes + 100 of overhead, kept
    assert m.storage_per_day(m.rates(DAY, peak=False))["dynamodb"] == pytest.approx(DAY * 1000 / 10)


def test_breaking_point_is_where_the_ratio_crosses_one():
    m = model()
    users = m.breaking_point("usage_worker MaximumConcurrency")

    def ratio(n):
        return next(r for r, what, *_ in m.run(n).limits if what == "usage_worker MaximumConcurrency")

    assert ratio(users) >= 1 > ratio(int(users / 1.05))


def test_key_requests_count_a_request_once_per_partition_and_every_item_written():
    from bench.capacity_profile import key_requests

    op = {"touches": [
        # one Query returning two items of a partition: one request on it
        {"request": 1, "kind": "read", "index": None, "pk": "U#{uid}", "sk": "P#{pid}"},
        {"request": 1, "kind": "read", "index": None, "pk": "U#{uid}", "sk": "P#{pid}"},
        # one transaction writing two items of a partition and one elsewhere, then refused once
        {"request": 2, "kind": "write", "index": None, "pk": "U#{uid}", "sk": "STATS"},
        {"request": 2, "kind": "write", "index": None, "pk": "U#{uid}", "sk": "APPUSE#{app}"},
        {"request": 2, "kind": "write", "index": None, "pk": "U#{uid}#A#{aid}", "sk": "META"},
        {"request": 3, "kind": "write", "index": None, "pk": "U#{uid}", "sk": "STATS", "failed": True},
    ]}
    counts = key_requests(op)
    assert counts[("read", None, "U#{uid}")] == 1 and counts[("write", None, "U#{uid}")] == 2
    assert counts[("item-write", None, "U#{uid}", "STATS")] == 2
    ok = key_requests(op, succeeded_only=True)
    assert ok[("write", None, "U#{uid}")] == 1 and ok[("item-write", None, "U#{uid}", "STATS")] == 1


def test_a_sharded_history_key_carries_a_quarter_of_its_recorded_load_per_partition():
    from bench.capacity import shards
    from chalicelib.aws.models import HISTORY_SHARDS

    assert shards("U#{uid}#A#{aid}#H#{n}") == HISTORY_SHARDS == 4
    assert shards("U#{uid}#A#{aid}") == 1 and shards("U#{uid}") == 1


# ---- item 6 of issue 32: GSI writes, derived work, backlog, conflicts ---------------------------------

def test_gsi_writes_one_per_entry_two_when_the_key_moves_none_on_keys_only_for_other_changes():
    from bench.capacity_profile import index_writes

    def item(**extra):
        return {"PK": {"S": "U#a#G#g"}, "SK": {"S": "META"}, **{k: {"S": v} for k, v in extra.items()}}

    due = item(GSI3PK="SWEEP#1", GSI3SK="t1#U#a#G#g", status="pending")
    moved = item(GSI3PK="SWEEP#1", GSI3SK="t2#U#a#G#g", status="processing")
    assert index_writes("GSI3", None, due) == [("SWEEP#1", "t1#U#a#G#g", index_writes("GSI3", None, due)[0][2])]
    assert [w[1] for w in index_writes("GSI3", due, moved)] == ["t1#U#a#G#g", "t2#U#a#G#g"]  # delete + put
    same_keys = item(GSI3PK="SWEEP#1", GSI3SK="t1#U#a#G#g", status="processing")
    assert index_writes("GSI3", due, same_keys) == []  # keys only: other attributes are not in the index
    assert len(index_writes("GSI3", due, item(status="done"))) == 1  # the entry goes
    listed = item(GSI1PK="U#a#P#p", GSI1SK="G#g", status="pending")
    changed = item(GSI1PK="U#a#P#p", GSI1SK="G#g", status="done")
    assert len(index_writes("GSI1", listed, changed)) == 1  # ALL projection: the copy is rewritten
    assert index_writes("GSI1", listed, listed) == []  # a refused write changes nothing


def test_the_stream_webhooks_and_intents_follow_from_the_operations_that_cause_them():
    from bench.capacity import derived_rates

    ops = {"gen": op("generation_worker", [touch("FILE#{file}", "INTENT", "write", 1.0, created=True)] * 3),
           "stream_worker (gen)": {**op("stream_worker"), "events_published": {"avatar.ready": 1,
                                                                               "generation.completed": 1}},
           "webhook_worker (per delivery)": op("webhook_worker"),
           "webhook_worker (per failed attempt)": op("webhook_worker"),
           "sweeper: file intents (per file)": op("sweeper")}
    traffic = Traffic(webhooks_per_user=0.5, webhook_down_share=0.1)
    out = derived_rates(ops, {"gen": 2.0}, traffic)
    assert out["stream_worker (gen)"] == 2.0  # every write of the operation reaches the stream worker
    delivered = 2.0 * 2 * 0.5  # 2 events per job, half a webhook per user
    assert out["webhook_worker (per delivery)"] == pytest.approx(delivered * 0.9)
    attempts = 1 + len(Settings().webhook_retry_delays)  # an endpoint that is down fails every attempt
    assert out["webhook_worker (per failed attempt)"] == pytest.approx(delivered * 0.1 * attempts)
    assert out["sweeper: file intents (per file)"] == pytest.approx(6.0)


def test_daily_curve_keeps_the_average_and_the_peak_factor():
    from bench.capacity import daily_shape

    shape = daily_shape(3.0, steps=288)
    assert sum(shape) / len(shape) == pytest.approx(1.0) and max(shape) == pytest.approx(3.0, rel=1e-3)


def test_backlog_drains_when_capacity_covers_the_peak_and_times_jobs_out_when_it_is_far_below():
    from bench.capacity import backlog

    traffic = Traffic(**{**TRAFFIC.__dict__, "generations": 1.0, "peak_factor": 3.0})
    m = Model(small_profile(), traffic, FUNCTIONS, Settings())
    users = DAY  # one job per second on average, 3/s at the peak; a job takes 10 s of provider time
    assert backlog(m, users, jobs_in_flight=40)["timed_out_per_day"] == pytest.approx(0.0)
    short = backlog(m, users, jobs_in_flight=2)  # 0.2 jobs/s against 1/s on average
    assert short["max_queue_age"] == pytest.approx(Settings().generation_max_queue_seconds, rel=0.01)
    assert 0.75 < short["timed_out_share"] < 0.85  # what is not served within 6 h is given back
    half = backlog(m, users, jobs_in_flight=15)  # above the average, below the peak: late, not lost
    assert half["timed_out_per_day"] == pytest.approx(0.0) and half["max_queue_age"] > 0


def test_conflict_chance_grows_with_the_writes_on_one_item():
    from bench.capacity import TRANSACTION_HOLD_SECONDS, transaction_items

    m = model()
    rows = {r["item"]: r for r in transaction_items(m, 100 * DAY)}
    stats = rows["U#{uid}/STATS"]
    share = zipf_top_share(100 * DAY, 1.0)
    assert stats["writes_per_s"] == pytest.approx(100 * share / 10)  # one write per recorded batch of 10
    assert stats["p_conflict"] == pytest.approx(1 - math.exp(-2 * TRANSACTION_HOLD_SECONDS * stats["writes_per_s"]))
    assert "U#{uid}#EVT#{eid}/EVT" not in rows  # unique items never conflict
