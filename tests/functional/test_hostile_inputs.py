"""Hostile input corpus: JSON bodies, bearer tokens and queue messages an attacker (or a broken
client) sends. Each gets a clear refusal with the error shape, nothing changes, and the service keeps
serving. (Hostile images: tests/unit/test_images.py and test_uploads.py run them through the worker.)"""
from __future__ import annotations

import base64
import json
import time

import boto3
import pytest

from tests.functional.conftest import PREFIX, SECRET, auth, body
from tests.support.generation import deliver, receive_raw


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(header)}.{_b64(claims)}."


def _hs256(header: dict, claims: dict, key: bytes) -> str:
    import hashlib
    import hmac

    signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
    sig = base64.urlsafe_b64encode(hmac.new(key, signing_input, hashlib.sha256).digest()).rstrip(b"=").decode()
    return f"{signing_input.decode()}.{sig}"


NOW = int(time.time())
GOOD = {"sub": "alice", "exp": NOW + 600}
JSON_BODIES = {
    "deep nesting": b"[" * 10_000 + b"]" * 10_000,
    "huge string": json.dumps({"name": "x" * 60_000}).encode(),
    "over the size limit": json.dumps({"name": "a", "description": "y" * 70_000}).encode(),
    "not json": b"name=alice",
    "invalid utf-8": b'{"name": "\xff\xfe"}',
    "lone surrogate": b'{"name": "\\ud800"}',
    "array body": b'[{"name": "a"}]',
    "null body": b"null",
    "wrong types": json.dumps({"name": 123, "description": ["x"]}).encode(),
    "extra fields": json.dumps({"name": "ok", "userId": "bob", "isAdmin": True}).encode(),
    "NaN": b'{"name": "a", "description": NaN}',
    "control characters": json.dumps({"name": "\u0000\u0007"}).encode(),
    "blank name": json.dumps({"name": "   "}).encode(),
    "zero-width only": json.dumps({"name": "\u200b"}).encode(),
}
TOKENS = {
    "alg none": _unsigned({"alg": "none", "typ": "JWT"}, GOOD),
    "alg None capitalised": _unsigned({"alg": "None"}, GOOD),
    "HS256 signed with an RS public key (alg confusion)": _hs256({"alg": "RS256", "typ": "JWT"}, GOOD, b"-----BEGIN PUBLIC KEY-----"),
    "HS512": _hs256({"alg": "HS512"}, GOOD, SECRET.encode()),
    "expired": _hs256({"alg": "HS256"}, {"sub": "alice", "exp": NOW - 3600}, SECRET.encode()),
    "not yet valid": _hs256({"alg": "HS256"}, {**GOOD, "nbf": NOW + 3600}, SECRET.encode()),
    "no sub": _hs256({"alg": "HS256"}, {"exp": NOW + 600}, SECRET.encode()),
    "sub with a separator": _hs256({"alg": "HS256"}, {**GOOD, "sub": "alice#A#x"}, SECRET.encode()),
    "sub not a string": _hs256({"alg": "HS256"}, {**GOOD, "sub": 42}, SECRET.encode()),
    "wrong key": _hs256({"alg": "HS256"}, GOOD, b"another-secret-of-enough-length-000000"),
    "garbage": "not.a.jwt",
    "empty": "",
    "huge": "a" * 20_000,
}


def project_names(client) -> list[str]:
    return [p["name"] for p in client.http.get(f"{PREFIX}/projects", headers=auth()).json_body["items"]]


@pytest.mark.parametrize("name", list(JSON_BODIES))
def test_hostile_json_bodies_are_refused_with_the_error_shape(client, name):
    resp = client.http.post(f"{PREFIX}/projects", headers=auth(), body=JSON_BODIES[name])
    assert 400 <= resp.status_code < 500, (name, resp.status_code, resp.body[:200])
    error = resp.json_body["error"]
    assert error["code"] and error["message"] and "details" in error
    assert project_names(client) == []
    assert client.http.get(f"{PREFIX}/health").status_code == 200


@pytest.mark.parametrize("name", list(TOKENS))
def test_hostile_tokens_are_401(client, name):
    resp = client.http.get(f"{PREFIX}/projects", headers={"Authorization": f"Bearer {TOKENS[name]}"})
    assert resp.status_code == 401, name
    assert resp.json_body["error"]["code"] == "unauthorized"


def test_a_good_token_still_works_after_the_hostile_ones(client):
    for token in TOKENS.values():
        client.http.get(f"{PREFIX}/projects", headers={"Authorization": f"Bearer {token}"})
    assert client.http.get(f"{PREFIX}/projects", headers=auth()).status_code == 200


@pytest.mark.parametrize("queue, handler", [("UsageEventsQueueUrl", "usage_worker"),
                                            ("GenerationQueueUrl", "generation_worker"),
                                            ("UploadQueueUrl", "upload_worker"),
                                            ("CleanupQueueUrl", "cleanup_worker")])
def test_malformed_queue_messages_never_loop_or_change_data(client, aws, queue, handler):
    sqs = boto3.client("sqs", region_name="us-east-1")
    pid = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "Keep"})).json_body["id"]
    before = client.http.get(f"{PREFIX}/projects/{pid}", headers=auth()).json_body
    bodies = ["", "null", "[]", "{", "💥" * 1000, json.dumps({"userId": "alice"}), json.dumps({"Records": "x"}),
              json.dumps({"userId": ["alice"], "generationId": {"$ne": None}}), "x" * 200_000]
    for text in bodies:
        sqs.send_message(QueueUrl=aws[queue], MessageBody=text or " ")
    deliver(handler, rounds=30)
    assert receive_raw(aws[queue]) == []  # nothing left to be retried forever
    assert client.http.get(f"{PREFIX}/projects/{pid}", headers=auth()).json_body == before
    assert client.http.get(f"{PREFIX}/health").status_code == 200
