"""Share links (issue 29) through chalice.test.Client over moto: make, list, revoke; the public page
(headers, content, no ids), expiry on a moved clock, 404/410 of one shape, the per-client view rate,
another user's ids, hostile inputs, and links dying with their avatar or project."""
from __future__ import annotations

import re
from datetime import timedelta

import boto3
import pytest

from chalicelib import clock
from tests.functional.conftest import PREFIX, auth, body, drain
from tests.functional.test_uploads import create_project, request_upload, upload
from tests.support import images as img


@pytest.fixture
def avatar(client, aws) -> dict:
    pid = create_project(client)
    return upload(client, aws, pid, img.jpeg(64, 48), name="Nova <b>", gender="female", hairColor="black",
                  personaName="Nova", personaAge=31, personaPersonality=["calm"], personaBackground="Bandung")


def share(client, avatar_id, user="alice", expected=201, **fields) -> dict:
    resp = client.http.post(f"{PREFIX}/avatars/{avatar_id}/shares", headers=auth(user), body=body(fields))
    assert resp.status_code == expected, resp.body
    return resp.json_body


def view(client, token_or_link: str, ip: str | None = None):
    path = token_or_link if token_or_link.startswith("/") else f"{PREFIX}/s/{token_or_link}"
    if ip is None:
        return client.http.get(path)  # no Authorization header: the page is public
    from chalice.local import LambdaEventConverter

    before = LambdaEventConverter.LOCAL_SOURCE_IP
    LambdaEventConverter.LOCAL_SOURCE_IP = ip  # what API Gateway puts in requestContext.identity.sourceIp
    try:
        return client.http.get(path)
    finally:
        LambdaEventConverter.LOCAL_SOURCE_IP = before


def listed(client, avatar_id, user="alice", **query) -> dict:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    resp = client.http.get(f"{PREFIX}/avatars/{avatar_id}/shares" + (f"?{qs}" if qs else ""), headers=auth(user))
    assert resp.status_code == 200, resp.body
    return resp.json_body


def revoke(client, share_id, user="alice"):
    return client.http.delete(f"{PREFIX}/shares/{share_id}", headers=auth(user))


def table_items(aws) -> list[dict]:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(aws["TableName"]).scan()["Items"]


def text(resp) -> str:
    return resp.body.decode() if isinstance(resp.body, bytes) else resp.body


def shape(resp) -> str:
    """The page without its words: the same for every status."""
    return re.sub(r">[^<]*<", "><", text(resp))


# ---- make, list, revoke -------------------------------------------------------------------------

def test_a_link_is_made_once_listed_without_its_token_and_only_its_hash_is_stored(client, aws, avatar):
    created = share(client, avatar["id"], label="for Budi")
    token = created["token"]
    assert len(token) == 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert created["link"] == f"{PREFIX}/s/{token}"
    assert created["id"].startswith("shr_") and created["tokenHint"] == token[-4:]
    assert (created["status"], created["label"], created["fields"]) == ("active", "for Budi", ["attributes"])
    expires = clock.now() + timedelta(days=30)
    assert abs(_parse(created["expiresAt"]) - expires) < timedelta(minutes=1)

    page = listed(client, avatar["id"])
    assert [s["id"] for s in page["items"]] == [created["id"]] and page["nextCursor"] is None
    assert "token" not in page["items"][0] and token not in str(page)
    import hashlib

    items = str(table_items(aws))
    assert token not in items and hashlib.sha256(token.encode()).hexdigest() in items


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_several_links_each_revocable_on_its_own_and_double_revoke_is_idempotent(client, aws, avatar):
    first, second = share(client, avatar["id"]), share(client, avatar["id"], expiresIn=3600)
    assert revoke(client, first["id"]).status_code == 204
    assert view(client, first["token"]).status_code == 410
    assert view(client, second["token"]).status_code == 200
    again = revoke(client, first["id"])
    assert again.status_code == 204
    states = {s["id"]: (s["status"], bool(s["revokedAt"])) for s in listed(client, avatar["id"])["items"]}
    assert states == {first["id"]: ("revoked", True), second["id"]: ("active", False)}


def test_the_list_is_paged_newest_first_with_a_cursor_bound_to_the_user(client, aws, avatar):
    made = [share(client, avatar["id"], label=f"n{i}")["id"] for i in range(3)]
    page1 = listed(client, avatar["id"], limit=2)
    assert [s["id"] for s in page1["items"]] == made[::-1][:2] and page1["nextCursor"]
    page2 = listed(client, avatar["id"], limit=2, cursor=page1["nextCursor"])
    assert [s["id"] for s in page2["items"]] == made[:1] and page2["nextCursor"] is None
    stolen = client.http.get(f"{PREFIX}/avatars/{avatar['id']}/shares?cursor={page1['nextCursor']}",
                             headers=auth("bob"))
    assert stolen.status_code in (400, 404)


def test_active_links_per_avatar_are_capped_and_revoking_frees_one(client, aws, avatar, monkeypatch):
    from chalicelib.sharing import service

    monkeypatch.setattr(service, "ACTIVE_LIMIT", 2)
    a = share(client, avatar["id"])
    share(client, avatar["id"])
    refused = share(client, avatar["id"], expected=409)
    assert refused["error"]["code"] == "share_limit"
    revoke(client, a["id"])
    share(client, avatar["id"])


def test_only_a_ready_avatar_can_be_shared(client, aws):
    pid = create_project(client)
    pending = request_upload(client, pid)["avatar"]
    assert share(client, pending["id"], expected=409)["error"]["code"] == "avatar_not_ready"


# ---- the page -----------------------------------------------------------------------------------

def test_the_page_shows_image_name_and_chosen_fields_with_strict_headers_and_no_ids(client, aws, avatar):
    created = share(client, avatar["id"], fields=["personaAge", "attributes"])
    resp = view(client, created["link"])
    assert resp.status_code == 200
    h = {k.lower(): v for k, v in resp.headers.items()}
    assert h["content-type"].startswith("text/html") and h["cache-control"] == "no-store"
    assert h["x-robots-tag"].startswith("noindex") and h["referrer-policy"] == "no-referrer"
    csp = h["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp and "unsafe" not in csp
    html = text(resp)
    assert '<meta name="robots" content="noindex' in html and "<script" not in html.lower()
    assert "Nova &lt;b&gt;" in html and "Nova <b>" not in html
    assert "31" in html and "female" in html and "black" in html
    assert "calm" not in html and "Bandung" not in html  # not chosen
    url = re.search(r'<img src="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "X-Amz-Expires=300" in url  # ≤ 5 minutes, signed at this view
    for secret in (avatar["id"], avatar["projectId"], created["id"], created["token"], "alice", "usage"):
        assert secret not in html.replace(url.replace("&", "&amp;"), ""), secret
    assert created["token"] not in url


def test_prompt_only_when_chosen(client, aws, avatar):
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws["TableName"])
    table.update_item(Key={"PK": f"U#alice#A#{avatar['id']}", "SK": "META"},
                      UpdateExpression="SET prompt = :p", ExpressionAttributeValues={":p": "a secret recipe"})
    assert "a secret recipe" not in text(view(client, share(client, avatar["id"])["token"]))
    assert "a secret recipe" in text(view(client, share(client, avatar["id"], fields=["prompt"])["token"]))


def test_unknown_revoked_and_expired_links_answer_404_or_410_with_one_page_shape(client, aws, avatar, monkeypatch):
    created = share(client, avatar["id"], expiresIn=3600)
    revoked = share(client, avatar["id"])
    revoke(client, revoked["id"])
    unknown = view(client, "A" * 43)
    gone = view(client, revoked["token"])
    assert (unknown.status_code, gone.status_code) == (404, 410)
    assert shape(unknown) == shape(gone)
    for resp in (unknown, gone):
        h = {k.lower(): v for k, v in resp.headers.items()}
        assert h["content-type"].startswith("text/html") and h["x-robots-tag"].startswith("noindex")
        assert h["cache-control"] == "no-store" and h["referrer-policy"] == "no-referrer"
    assert view(client, created["token"]).status_code == 200

    later = clock.now() + timedelta(seconds=3601)
    monkeypatch.setattr(clock, "now", lambda: later)
    expired = view(client, created["token"])
    assert expired.status_code == 410 and shape(expired) == shape(unknown)
    assert {s["id"]: s["status"] for s in listed(client, avatar["id"])["items"]}[created["id"]] == "expired"


def test_hostile_tokens_get_the_404_page(client, aws):
    for token in ["x" * 200, "%3Cscript%3E", "..%2F..%2Fadmin", "a" * 42 + "%00", "'%20OR%201=1"]:
        resp = view(client, token)
        assert resp.status_code == 404 and text(resp).startswith("<!doctype html>"), token
        assert "<script" not in text(resp).lower()


def test_views_are_rate_limited_per_client_with_retry_after(client, aws, avatar, monkeypatch):
    from chalicelib.sharing import service

    monkeypatch.setattr(service, "VIEWS_PER_WINDOW", 3)
    token = share(client, avatar["id"])["token"]
    assert [view(client, token, ip="198.51.100.7").status_code for _ in range(3)] == [200] * 3
    limited = view(client, token, ip="198.51.100.7")
    assert limited.status_code == 429
    retry = int({k.lower(): v for k, v in limited.headers.items()}["retry-after"])
    assert 1 <= retry <= 60 and shape(limited) == shape(view(client, "B" * 43, ip="203.0.113.9"))
    assert view(client, "C" * 43, ip="198.51.100.7").status_code == 429  # guessing counts too
    assert view(client, token, ip="203.0.113.9").status_code == 200  # another client
    items = [i for i in table_items(aws) if str(i["PK"]).startswith("RATE#share-view#")]
    assert items and all("ttl" in i for i in items)


def test_reads_make_a_fixed_number_of_dynamodb_calls_whatever_the_links(client, aws, avatar):
    from tests.support.ddb_calls import DynamoDBCalls

    tokens = [share(client, avatar["id"])["token"] for _ in range(3)]
    with DynamoDBCalls() as calls:
        listed(client, avatar["id"], limit=2)
    assert calls.names == ["GetItem", "Query"]
    with DynamoDBCalls() as calls:
        assert view(client, tokens[0]).status_code == 200
    assert calls.names == ["UpdateItem", "GetItem", "GetItem", "GetItem"]  # window, token, share, avatar
    with DynamoDBCalls() as calls:
        assert view(client, "D" * 43).status_code == 404
    assert calls.names == ["UpdateItem", "GetItem"]
    with DynamoDBCalls() as calls:
        assert view(client, "short").status_code == 404
    assert calls.names == ["UpdateItem"]
    assert "Scan" not in calls.names


# ---- scope and inputs ---------------------------------------------------------------------------

def test_another_users_avatar_and_share_ids_are_404_and_change_nothing(client, aws, avatar):
    created = share(client, avatar["id"])
    assert share(client, avatar["id"], user="bob", expected=404)["error"]["code"] == "not_found"
    assert client.http.get(f"{PREFIX}/avatars/{avatar['id']}/shares", headers=auth("bob")).status_code == 404
    resp = revoke(client, created["id"], user="bob")
    assert resp.status_code == 404 and resp.json_body["error"]["code"] == "not_found"
    assert view(client, created["token"]).status_code == 200
    assert revoke(client, "shr_" + "0" * 26).status_code == 404
    assert revoke(client, "not-an-id").status_code == 404


def test_the_share_routes_need_a_token_and_the_page_does_not(client, aws, avatar):
    created = share(client, avatar["id"])
    assert client.http.get(f"{PREFIX}/avatars/{avatar['id']}/shares").status_code == 401
    assert client.http.delete(f"{PREFIX}/shares/{created['id']}").status_code == 401
    assert view(client, created["token"]).status_code == 200


HOSTILE_BODIES = [
    {"expiresIn": 0}, {"expiresIn": 59}, {"expiresIn": 366 * 86400}, {"expiresIn": -1}, {"expiresIn": "3600"},
    {"expiresIn": 1.5}, {"expiresIn": True}, {"expiresIn": 10 ** 30}, {"fields": ["usageCount"]},
    {"fields": "attributes"}, {"fields": ["prompt"] * 8}, {"label": "x" * 101}, {"label": "a\u202eb"},
    {"label": "a\x00b"}, {"token": "chosen-by-me"}, [], "x",
]


def test_hostile_bodies_are_400_with_the_error_shape(client, aws, avatar):
    for payload in HOSTILE_BODIES:
        resp = client.http.post(f"{PREFIX}/avatars/{avatar['id']}/shares", headers=auth(), body=body(payload))
        assert resp.status_code == 400, (payload, resp.body)
        assert set(resp.json_body["error"]) == {"code", "message", "details"}
    assert listed(client, avatar["id"])["items"] == []


def test_an_empty_body_takes_the_defaults_and_a_non_json_one_is_refused(client, aws, avatar):
    assert share(client, avatar["id"])["fields"] == ["attributes"]
    bad = client.http.post(f"{PREFIX}/avatars/{avatar['id']}/shares", headers=auth(), body=b"{nope")
    assert bad.status_code == 400 and bad.json_body["error"]["code"] == "bad_json"


# ---- links die with their avatar ----------------------------------------------------------------

def test_deleting_the_avatar_makes_its_links_410_and_removes_the_share_items(client, aws, avatar):
    created = share(client, avatar["id"])
    assert client.http.delete(f"{PREFIX}/avatars/{avatar['id']}", headers=auth()).status_code == 204
    assert view(client, created["token"]).status_code == 410
    assert [i for i in table_items(aws) if str(i["PK"]).startswith("U#alice#S#")] == []
    assert client.http.get(f"{PREFIX}/avatars/{avatar['id']}/shares", headers=auth()).status_code == 404
    assert revoke(client, created["id"]).status_code == 404


def test_deleting_the_project_makes_its_links_410_at_once_and_the_purge_removes_them(client, aws, avatar):
    created = share(client, avatar["id"])
    assert client.http.delete(f"{PREFIX}/projects/{avatar['projectId']}", headers=auth()).status_code == 204
    drain(client, aws, "CleanupQueueUrl", "cleanup_worker")
    assert view(client, created["token"]).status_code == 410
    assert [i for i in table_items(aws) if str(i["PK"]).startswith("U#alice#S#")] == []


def test_a_share_is_written_only_while_its_avatar_is_ready(client, aws, avatar):
    from chalicelib.dependencies import get_deps
    from chalicelib.sharing import store

    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws["TableName"])
    table.update_item(Key={"PK": f"U#alice#A#{avatar['id']}", "SK": "META"},
                      UpdateExpression="SET #s = :d", ExpressionAttributeNames={"#s": "status"},
                      ExpressionAttributeValues={":d": "deleting"})  # a delete began after the create's read
    late = store.new_share(user_id="alice", share_id="shr_" + "1" * 26, avatar_id=avatar["id"],
                           project_id=avatar["projectId"], label=None, fields=[], token_hash="c" * 64,
                           token_hint="cccc", now_iso="2026-12-01T00:00:00.000Z",
                           expires_iso="2027-01-01T00:00:00.000Z", ttl=1)
    with pytest.raises(store.AvatarNotReady):
        store.put_share(get_deps().dynamodb, late)
    assert [i for i in table_items(aws) if str(i["PK"]).startswith(("U#alice#S#", "SHARE#"))] == []


# ---- events -------------------------------------------------------------------------------------

def test_sharing_and_revoking_reach_the_bus(client, aws, avatar):
    import json

    from tests.functional.test_events import moto_streams
    from app import app
    from local.streams import StreamFeeder

    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="share-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="shares", EventBusName=aws["EventBusName"],
                    EventPattern=json.dumps({"detail-type": ["avatar.shared", "avatar.share_revoked"]}))
    events.put_targets(Rule="shares", EventBusName=aws["EventBusName"], Targets=[{"Id": "inbox", "Arn": arn}])
    stream = StreamFeeder(app, None, "us-east-1", table_name=aws["TableName"], client=moto_streams())

    created = share(client, avatar["id"])
    revoke(client, created["id"])
    stream.drain()
    got = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                               WaitTimeSeconds=0).get("Messages", [])]
    assert sorted(e["detail-type"] for e in got) == ["avatar.share_revoked", "avatar.shared"]
    assert all(e["detail"]["data"]["id"] == created["id"] for e in got)
    assert created["token"] not in json.dumps(got)


def test_the_page_speaks_indonesian_to_a_browser_that_asks_for_it_and_english_otherwise(client, aws, avatar):
    created = share(client, avatar["id"], fields=["personaAge", "attributes"])
    revoked = share(client, avatar["id"])
    revoke(client, revoked["id"])
    asks = {"id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7": "id", "en-US,en;q=0.9,id;q=0.8": "en", "fr-FR": "en", "": "en"}
    for accept, lang in asks.items():
        resp = client.http.get(created["link"], headers={"Accept-Language": accept} if accept else {})
        h = {k.lower(): v for k, v in resp.headers.items()}
        assert resp.status_code == 200 and h["content-language"] == lang and "accept-language" in h["vary"].lower()
        html = text(resp)
        assert f'<html lang="{lang}">' in html
        assert ("Usia" in html) == (lang == "id") and ("Age" in html) == (lang == "en"), accept
        gone = client.http.get(f"{PREFIX}/s/{revoked['token']}", headers={"Accept-Language": accept})
        assert gone.status_code == 410
        assert ("Tautan sudah tidak tersedia" in text(gone)) == (lang == "id"), accept
    # ?lang= wins over the header (a link sent with the language chosen)
    forced = client.http.get(created["link"] + "?lang=id", headers={"Accept-Language": "en"})
    assert '<html lang="id">' in text(forced) and "Usia" in text(forced)
