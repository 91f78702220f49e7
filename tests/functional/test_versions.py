"""Version history and lineage (issue 29, items 3 and 6) over moto: every change of an avatar's name,
persona, attributes or crop is one numbered version written with the change; restore; the newest 100
kept; cursor paging; versions go with the avatar; concurrent edits take distinct numbers; hostile
version numbers are 4xx; restyles and variations name their source and the source its derivatives."""
from __future__ import annotations

import threading

import pytest

from chalicelib import dependencies
from chalicelib.aws.models import META, AvatarModel, AvatarVersionModel, avatar_pk, version_sk
from tests.functional.conftest import PREFIX, auth, body
from tests.support.ddb_calls import DynamoDBCalls
from tests.support.usage import new_project, ready_avatar


@pytest.fixture
def atomic_moto(monkeypatch):
    """DynamoDB applies each write (a transaction as a whole) atomically; moto checks conditions and
    then writes without a lock, so two threads can both pass a check. One lock around moto's write
    operations gives it DynamoDB's atomicity — the code under test is untouched."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("transact_write_items", "update_item", "put_item", "delete_item", "get_item", "query"):
        original = getattr(DynamoDBBackend, name)

        def locked(self, *args, __original=original, **kwargs):
            with lock:
                return __original(self, *args, **kwargs)
        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.fixture
def avatar(client):
    """Alice's ready avatar (512×512), never edited."""
    connection = dependencies.get_deps().dynamodb
    return ready_avatar(connection, "alice", new_project(connection, "alice"), name="Original")


def put(client, aid, user="alice", **fields):
    return client.http.put(f"{PREFIX}/avatars/{aid}", headers=auth(user), body=body(fields))


def versions(client, aid, user="alice", query=""):
    return client.http.get(f"{PREFIX}/avatars/{aid}/versions{query}", headers=auth(user))


def restore(client, aid, number, user="alice"):
    return client.http.post(f"{PREFIX}/avatars/{aid}/versions/{number}/restore", headers=auth(user))


def version_items(user, aid) -> list[AvatarVersionModel]:
    return list(AvatarVersionModel.query(avatar_pk(user, aid), AvatarVersionModel.sk.startswith("V#"),
                                         consistent_read=True))


# ---- each kind of change records one version ----------------------------------------------------------

def test_an_edit_records_one_version_with_each_changed_field_before_and_after(client, avatar):
    resp = put(client, avatar, name="Renamed", personaName="Ana", gender="female")
    assert resp.status_code == 200, resp.body
    assert (resp.json_body["name"], resp.json_body["version"]) == ("Renamed", 1)
    [v] = versions(client, avatar).json_body["items"]
    assert (v["version"], v["by"], v["cause"], v["route"]) == (1, "alice", "edit", "PUT /avatars/{avatar_id}")
    assert v["changes"] == {"name": {"before": "Original", "after": "Renamed"},
                            "personaName": {"before": None, "after": "Ana"},
                            "gender": {"before": None, "after": "female"}}
    assert v["state"]["name"] == "Renamed" and v["state"]["crop"] is None and v["at"]
    assert int(AvatarModel.get(avatar_pk("alice", avatar), META).version_count) == 1


def test_an_edit_that_changes_nothing_records_nothing(client, avatar):
    assert put(client, avatar, name="Original").status_code == 200
    assert put(client, avatar, name="X").status_code == 200
    assert put(client, avatar, name="X").status_code == 200  # a replayed PUT
    assert [v["version"] for v in versions(client, avatar).json_body["items"]] == [1]


def test_a_crop_change_is_a_version_and_clearing_it_another(client, avatar):
    assert put(client, avatar, crop={"x": 10, "y": 20, "size": 100}).status_code == 200
    assert put(client, avatar, crop=None).status_code == 200
    newest, first = versions(client, avatar).json_body["items"]
    assert first["changes"] == {"crop": {"before": None, "after": {"x": 10, "y": 20, "size": 100}}}
    assert newest["changes"] == {"crop": {"before": {"x": 10, "y": 20, "size": 100}, "after": None}}


def test_accepting_a_suggestion_is_a_version_and_dismissing_is_not(client, avatar):
    AvatarModel(avatar_pk("alice", avatar), META).update(actions=[
        AvatarModel.suggestions.set({"glasses": {"value": "glasses", "score": 0.9},
                                     "background": {"value": "plain", "score": 0.8}}),
        AvatarModel.suggestion_status.set("ready")])
    resp = client.http.post(f"{PREFIX}/avatars/{avatar}/suggestions/accept", headers=auth(),
                            body=body({"attributes": ["glasses"]}))
    assert resp.status_code == 200, resp.body
    assert resp.json_body["glasses"] == "glasses" and set(resp.json_body["suggestions"]) == {"background"}
    assert client.http.delete(f"{PREFIX}/avatars/{avatar}/suggestions", headers=auth()).status_code == 200
    [v] = versions(client, avatar).json_body["items"]
    assert (v["cause"], v["route"]) == ("suggestion_accept", "POST /avatars/{avatar_id}/suggestions/accept")
    assert v["changes"] == {"glasses": {"before": None, "after": "glasses"}}


# ---- restore ----------------------------------------------------------------------------------------

def test_restore_sets_the_fields_of_that_version_as_a_new_version_and_a_repeat_changes_nothing(client, avatar):
    put(client, avatar, name="One", personaAge=30)
    put(client, avatar, name="Two", personaAge=None, hairColor="red")
    resp = restore(client, avatar, 1)
    assert resp.status_code == 200, resp.body
    made = resp.json_body["version"]
    assert (made["version"], made["cause"], made["restoredFrom"]) == (3, "restore", 1)
    assert made["changes"] == {"name": {"before": "Two", "after": "One"}, "personaAge": {"before": None, "after": 30},
                               "hairColor": {"before": "red", "after": None}}
    shown = resp.json_body["avatar"]
    assert (shown["name"], shown["personaAge"], shown["hairColor"]) == ("One", 30, None)
    again = restore(client, avatar, 1)  # the double click
    assert again.status_code == 200 and again.json_body["version"] is None
    assert again.json_body["avatar"]["name"] == "One"
    assert [v["version"] for v in versions(client, avatar).json_body["items"]] == [3, 2, 1]


def test_restoring_a_crop_asks_for_its_thumbnail(client, avatar, aws):
    import boto3

    put(client, avatar, crop={"x": 0, "y": 0, "size": 200})
    put(client, avatar, crop={"x": 50, "y": 50, "size": 300})
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.purge_queue(QueueUrl=aws["UploadQueueUrl"])
    assert restore(client, avatar, 1).status_code == 200
    sent = sqs.receive_message(QueueUrl=aws["UploadQueueUrl"], MaxNumberOfMessages=10).get("Messages", [])
    assert any(avatar in m["Body"] and "avatar.thumbnail" in m["Body"] for m in sent)
    assert client.http.get(f"{PREFIX}/avatars/{avatar}", headers=auth()).json_body["crop"] == {"x": 0, "y": 0, "size": 200}


# ---- bounds, paging, deletion ---------------------------------------------------------------------

def test_only_the_newest_100_are_kept_each_write_dropping_one(client, avatar):
    from chalicelib.avatars import versions as domain

    connection = dependencies.get_deps().dynamodb
    for i in range(105):
        domain.edit_avatar("alice", avatar, {"name": f"n{i}"}, connection=connection)
    items = version_items("alice", avatar)
    assert [int(v.number) for v in items] == list(range(6, 106))
    assert AvatarVersionModel.count(avatar_pk("alice", avatar), AvatarVersionModel.sk == version_sk(5)) == 0
    page = versions(client, avatar, query="?limit=100").json_body
    assert [v["version"] for v in page["items"]] == list(range(105, 5, -1))
    if page["nextCursor"]:  # DynamoDB may hand a key back after a full page: the next one is empty
        assert versions(client, avatar, query=f"?cursor={page['nextCursor']}").json_body["items"] == []
    assert restore(client, avatar, 5).json_body["error"]["code"] == "version_not_found"  # trimmed: 404


def test_cursor_pages_walk_every_version_newest_first_once(client, avatar):
    from chalicelib.avatars import versions as domain

    connection = dependencies.get_deps().dynamodb
    for i in range(7):
        domain.edit_avatar("alice", avatar, {"name": f"n{i}"}, connection=connection)
    seen, cursor = [], None
    for _ in range(5):
        page = versions(client, avatar, query=f"?limit=3{'&cursor=' + cursor if cursor else ''}").json_body
        seen += [v["version"] for v in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    # a cursor is bound to its avatar and user
    first = versions(client, avatar, query="?limit=3").json_body["nextCursor"]
    assert versions(client, avatar, user="bob", query=f"?cursor={first}").status_code in (400, 404)


def test_deleting_the_avatar_removes_its_versions(client, avatar):
    put(client, avatar, name="A")
    put(client, avatar, name="B")
    assert len(version_items("alice", avatar)) == 2
    assert client.http.delete(f"{PREFIX}/avatars/{avatar}", headers=auth()).status_code == 204
    assert version_items("alice", avatar) == []
    assert versions(client, avatar).status_code == 404


def test_deleting_the_project_removes_its_avatars_versions(client, aws):
    from tests.support.generation import deliver

    connection = dependencies.get_deps().dynamodb
    pid = new_project(connection, "alice")
    aid = ready_avatar(connection, "alice", pid)
    put(client, aid, name="A")
    assert client.http.delete(f"{PREFIX}/projects/{pid}", headers=auth()).status_code == 204
    deliver("cleanup_worker")
    assert version_items("alice", aid) == []


# ---- concurrency and replays ----------------------------------------------------------------------

def test_an_edit_that_lands_between_a_read_and_its_write_takes_the_next_number(client, avatar):
    """The interleaving two concurrent edits make, step by step: B reads (version 0), A commits
    version 1, B's transaction is refused (the avatar is no longer at version 0), B reads again and
    becomes version 2 — on top of A's change, so its `before` is A's `after`."""
    from chalicelib.avatars import versions as domain

    connection = dependencies.get_deps().dynamodb
    reads = []

    def plan_b(current):
        reads.append(int(current.version_count or 0))
        if len(reads) == 1:  # A commits after B has read
            domain.edit_avatar("alice", avatar, {"name": "A"}, connection=connection)
        return domain.plan_fields(current, {"name": "B", "personaName": "Bea"})

    _, made = domain.commit("alice", avatar, plan_b, connection=connection, actor="bob-the-member",
                           cause=domain.EDIT)
    assert reads == [0, 1] and int(made.number) == 2 and made.by == "bob-the-member"
    first, second = sorted(version_items("alice", avatar), key=lambda v: int(v.number))
    import json

    assert json.loads(first.changes)["name"] == {"before": "Original", "after": "A"}
    assert json.loads(second.changes)["name"] == {"before": "A", "after": "B"}


def test_concurrent_edits_take_distinct_numbers_and_chain_before_to_after(client, avatar, atomic_moto):
    import json

    from chalicelib.avatars import versions as domain

    connection = dependencies.get_deps().dynamodb
    barrier = threading.Barrier(6)
    errors = []

    def edit(i):
        # The domain call, not the HTTP route: chalice's test client swaps os.environ per request,
        # which is not safe from several threads at once.
        barrier.wait()
        try:
            domain.edit_avatar("alice", avatar, {"name": f"writer {i}"}, connection=connection)
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    items = sorted(version_items("alice", avatar), key=lambda v: int(v.number))
    assert [int(v.number) for v in items] == [1, 2, 3, 4, 5, 6]
    names = ["Original"] + [json.loads(v.state)["name"] for v in items]
    for previous, version in zip(names, items):
        assert json.loads(version.changes)["name"]["before"] == previous  # no change was lost or doubled
    assert sorted(names[1:]) == sorted(f"writer {i}" for i in range(6))
    assert int(AvatarModel.get(avatar_pk("alice", avatar), META).version_count) == 6


def test_concurrent_restores_of_one_version_record_it_once(client, avatar, atomic_moto):
    from chalicelib.avatars import versions as domain

    connection = dependencies.get_deps().dynamodb
    put(client, avatar, name="One")
    put(client, avatar, name="Two")
    barrier = threading.Barrier(4)
    made = []

    def click():
        barrier.wait()
        made.append(domain.restore("alice", avatar, 1, connection=connection)[1])

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 4 and len([v for v in made if v is not None]) == 1
    assert [int(v.number) for v in version_items("alice", avatar)] == [1, 2, 3]


def test_stream_records_of_versions_publish_nothing_and_a_replayed_update_is_one_event(client, avatar):
    from chalicelib.events import mapping

    put(client, avatar, name="Streamed")
    [version] = version_items("alice", avatar)
    keys = {"PK": {"S": version.pk}, "SK": {"S": version.sk}}
    insert = {"eventName": "INSERT", "dynamodb": {"Keys": keys, "NewImage": {**keys, "number": {"N": "1"}},
                                                    "SequenceNumber": "100", "ApproximateCreationDateTime": 1.7e9}}
    assert mapping.from_stream_record(insert) == []
    meta = {"PK": {"S": avatar_pk("alice", avatar)}, "SK": {"S": META}}
    image = {**meta, "id": {"S": avatar}, "userId": {"S": "alice"}, "projectId": {"S": "p"}, "status": {"S": "ready"},
             "sourceType": {"S": "uploaded"}, "createdAt": {"S": "2026-01-01T00:00:00Z"}}
    modify = {"eventName": "MODIFY", "dynamodb": {
        "Keys": meta, "OldImage": {**image, "name": {"S": "Original"}},
        "NewImage": {**image, "name": {"S": "Streamed"}, "versionCount": {"N": "1"}},
        "SequenceNumber": "101", "ApproximateCreationDateTime": 1.7e9}}
    first, again = mapping.from_stream_record(modify), mapping.from_stream_record(modify)
    assert [e["type"] for e in first] == ["avatar.updated"] and first == again  # receivers dedupe on the id
    # a change of versionCount alone (no tracked field) is no event
    alone = {"eventName": "MODIFY", "dynamodb": {**modify["dynamodb"], "OldImage": {**image, "name": {"S": "S"}},
                                                  "NewImage": {**image, "name": {"S": "S"}, "versionCount": {"N": "2"}}}}
    assert mapping.from_stream_record(alone) == []


# ---- security ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["0", "-1", "abc", "1.5", "01", "100000000", "9" * 40, "%20"])
def test_hostile_version_numbers_are_400_without_a_change(client, avatar, number):
    put(client, avatar, name="One")
    resp = restore(client, avatar, number)
    assert resp.status_code == 400, (number, resp.body)
    assert resp.json_body["error"]["code"] == "invalid_version"
    assert [v["version"] for v in versions(client, avatar).json_body["items"]] == [1]


def test_unknown_version_and_another_users_avatar_are_404(client, avatar):
    put(client, avatar, name="One")
    assert restore(client, avatar, 2).status_code == 404
    assert restore(client, avatar, 1, user="bob").json_body["error"]["code"] == "not_found"
    assert versions(client, avatar, user="bob").status_code == 404
    assert versions(client, "ava_unknown").status_code == 404
    assert client.http.get(f"{PREFIX}/avatars/{avatar}", headers=auth()).json_body["name"] == "One"


def test_hostile_list_queries_are_400(client, avatar):
    for query in ("?limit=0", "?limit=101", "?limit=x", "?cursor=forged"):
        assert versions(client, avatar, query=query).status_code == 400, query


# ---- reads are bounded ------------------------------------------------------------------------------

def test_reads_make_a_fixed_number_of_calls(client, avatar):
    from chalicelib.avatars import versions as domain

    connection = dependencies.get_deps().dynamodb
    for i in range(30):
        domain.edit_avatar("alice", avatar, {"name": f"n{i}"}, connection=connection)
    for query in ("", "?limit=5"):
        with DynamoDBCalls() as calls:
            page = versions(client, avatar, query=query).json_body
        assert calls.names == ["GetItem", "Query"]
    with DynamoDBCalls() as calls:
        versions(client, avatar, query=f"?limit=5&cursor={page['nextCursor']}")
    assert calls.names == ["GetItem", "Query"]
    with DynamoDBCalls() as calls:
        client.http.get(f"{PREFIX}/avatars/{avatar}", headers=auth())
    assert calls.names == ["GetItem", "Query"]  # the avatar, its derivatives (no source)


# ---- lineage ------------------------------------------------------------------------------------------

@pytest.fixture
def offline(aws, monkeypatch):
    monkeypatch.setenv("GENERATION_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("GENERATION_PROVIDER", "offline")
    dependencies.reset()


def test_restyles_and_variations_name_their_source_and_the_source_its_derivatives(client, offline):
    from tests.support.generation import deliver

    pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "L"})).json_body["id"]
    gen = client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers=auth(),
                           body=body({"prompt": "a face", "name": "Source", "width": 512, "height": 512})).json_body
    deliver("generation_worker")
    source = client.http.get(f"{PREFIX}/generations/{gen['id']}", headers=auth()).json_body["avatar"]["id"]
    assert client.http.post(f"{PREFIX}/avatars/{source}/restyle", headers=auth(),
                            body=body({"prompt": "as a painting"})).status_code == 202
    assert client.http.post(f"{PREFIX}/avatars/{source}/variations", headers=auth(),
                            body=body({"count": 2})).status_code == 202
    deliver("generation_worker")
    detail = client.http.get(f"{PREFIX}/avatars/{source}", headers=auth()).json_body
    assert detail["source"] is None
    kinds = sorted(d["kind"] for d in detail["derivatives"]["items"])
    assert kinds == ["restyle", "variation", "variation"] and detail["derivatives"]["hasMore"] is False
    shown_ids = [d["id"] for d in detail["derivatives"]["items"]]
    assert shown_ids == sorted(shown_ids, reverse=True)  # newest first: ids sort by when their job started
    child = detail["derivatives"]["items"][0]
    with DynamoDBCalls() as calls:
        shown = client.http.get(f"{PREFIX}/avatars/{child['id']}", headers=auth()).json_body
    assert calls.names == ["GetItem", "GetItem", "Query"]  # the avatar, its source, its derivatives
    assert (shown["source"]["id"], shown["source"]["name"], shown["source"]["exists"]) == (source, "Source", True)
    assert shown["sourceAvatarId"] == source and shown["derivatives"] == {"items": [], "hasMore": False}
    # the source goes: its children still name it, as gone; the children go: the list shrinks
    assert client.http.delete(f"{PREFIX}/avatars/{source}", headers=auth()).status_code == 204
    after = client.http.get(f"{PREFIX}/avatars/{child['id']}", headers=auth()).json_body["source"]
    assert (after["id"], after["exists"], after.get("name")) == (source, False, None)
    # another user's avatar id as a source never leaks: bob sees 404 on the child
    assert client.http.get(f"{PREFIX}/avatars/{child['id']}", headers=auth("bob")).status_code == 404


def test_derivatives_show_the_newest_20_and_say_there_are_more(client, avatar):
    from chalicelib import ids
    from chalicelib.avatars import service as avatars

    made = []
    with AvatarModel.batch_write() as batch:
        for i in range(23):
            aid = ids.new_id("ava")
            made.append(aid)
            batch.save(avatars.new_avatar(user_id="alice", project_id="prj_x", avatar_id=aid, name=f"d{i}",
                                          source_type="image_to_image", status="ready", fields={},
                                          source_avatar_id=avatar, thumbnail_key=f"thumbs/alice/{aid}.jpg"))
    shown = client.http.get(f"{PREFIX}/avatars/{avatar}", headers=auth()).json_body["derivatives"]
    assert len(shown["items"]) == 20 and shown["hasMore"] is True
    assert [d["id"] for d in shown["items"]] == sorted(made, reverse=True)[:20]  # ids sort by creation


def test_the_backfill_lists_restyles_made_before_lineage_keys(client, avatar):
    import importlib.util
    from pathlib import Path

    from chalicelib import ids
    from chalicelib.avatars import service as avatars

    old = avatars.new_avatar(user_id="alice", project_id="prj_x", avatar_id=ids.new_id("ava"), name="old restyle",
                             source_type="image_to_image", status="ready", fields={}, source_avatar_id=avatar)
    old.gsi2pk = old.gsi2sk = None  # as written before issue 29
    old.save()
    assert client.http.get(f"{PREFIX}/avatars/{avatar}", headers=auth()).json_body["derivatives"]["items"] == []
    path = Path(__file__).resolve().parents[2] / "scripts" / "backfill_lineage.py"
    spec = importlib.util.spec_from_file_location("backfill_lineage", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.backfill() == 1 and script.backfill() == 0  # again: nothing left to do
    shown = client.http.get(f"{PREFIX}/avatars/{avatar}", headers=auth()).json_body["derivatives"]["items"]
    assert [d["id"] for d in shown] == [old.id]


def test_the_audit_finds_a_version_gap_and_versions_left_by_a_gone_avatar(client, avatar):
    from infra.audit import check_gone, check_user, load_user

    put(client, avatar, name="A")
    put(client, avatar, name="B")
    put(client, avatar, name="C")
    assert [f for f in check_user(load_user("alice")) if f.kind == "version"] == []
    assert check_gone("alice", [avatar]) == []
    # GIVEN version 2 lost: a gap
    AvatarVersionModel(avatar_pk("alice", avatar), version_sk(2)).delete()
    [gap] = [f for f in check_user(load_user("alice")) if f.kind == "version"]
    assert avatar in gap.subject and "expected 1…3 (3)" in gap.subject
    # GIVEN the avatar item gone but its versions left (a delete that skipped them)
    AvatarModel(avatar_pk("alice", avatar), META).delete()
    [left] = check_gone("alice", [avatar])
    assert left.kind == "orphan" and "V#00000001" in left.subject
