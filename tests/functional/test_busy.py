"""DynamoDB saying "too much at once" — throttling, or a transaction cancelled by a concurrent write —
reaches the client as 503 with Retry-After, on reads and writes alike, and nothing is half-written."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.functional.conftest import PREFIX, auth, body
from tests.support.botocore_hooks import Hooked


class Answer(Hooked):
    """Every `operation` DynamoDB call made while active answers `code` (as DynamoDB would)."""

    def __init__(self, operation: str, code: str, *, conflict_on_last: bool = False):
        super().__init__(f"before-call.dynamodb.{operation}", self)
        self.operation, self.code, self.conflict_on_last = operation, code, conflict_on_last
        self.calls = 0

    def __call__(self, params, **_):
        self.calls += 1
        response = {"Error": {"Code": self.code, "Message": "injected"}}
        if self.conflict_on_last:
            sent = json.loads(params["body"])["TransactItems"]
            response["CancellationReasons"] = [{"Code": "None"}] * (len(sent) - 1) + [{"Code": "TransactionConflict"}]
        raise ClientError(response, self.operation)


def _project(client) -> str:
    return client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "Busy"})).json_body["id"]


def _assert_busy(response, fault):
    assert fault.calls >= 1
    assert response.status_code == 503, response.body
    error = response.json_body["error"]
    assert error["code"] == "busy" and error["message"]
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "RequestLimitExceeded"])
def test_a_throttled_list_is_503_with_retry_after(client, code):
    _project(client)
    with Answer("Query", code) as fault:
        response = client.http.get(f"{PREFIX}/projects", headers=auth())
    _assert_busy(response, fault)
    assert client.http.get(f"{PREFIX}/projects", headers=auth()).status_code == 200


def test_a_throttled_read_of_one_item_is_503_with_retry_after(client):
    pid = _project(client)
    with Answer("GetItem", "ProvisionedThroughputExceededException") as fault:
        response = client.http.get(f"{PREFIX}/projects/{pid}", headers=auth())
    _assert_busy(response, fault)


def test_a_write_conflicting_with_a_transaction_is_503_and_changes_nothing(client):
    pid = _project(client)
    with Answer("UpdateItem", "TransactionConflictException") as fault:
        response = client.http.put(f"{PREFIX}/projects/{pid}", headers=auth(), body=body({"name": "Renamed"}))
    _assert_busy(response, fault)
    assert client.http.get(f"{PREFIX}/projects/{pid}", headers=auth()).json_body["name"] == "Busy"


def test_a_transaction_cancelled_by_a_concurrent_write_is_503_and_writes_nothing(client):
    before = client.http.get(f"{PREFIX}/stats", headers=auth()).json_body
    with Answer("TransactWriteItems", "TransactionCanceledException", conflict_on_last=True) as fault:
        response = client.http.post(f"{PREFIX}/projects", headers=auth(), body=body({"name": "New"}))
    _assert_busy(response, fault)
    assert client.http.get(f"{PREFIX}/projects", headers=auth()).json_body["items"] == []
    assert client.http.get(f"{PREFIX}/stats", headers=auth()).json_body == before


class ConflictOnce:
    """The first TransactWriteItems that records a made image is cancelled by a concurrent write on one
    item (as DynamoDB answers when another transaction holds the user's STATS); later calls pass."""

    def __init__(self):
        self.cancelled = 0

    def __call__(self, params, **_):
        sent = json.loads(params["body"])["TransactItems"]
        records_an_image = any("Put" in item and item["Put"]["Item"]["PK"]["S"].rsplit("#", 2)[-2] == "A"
                               for item in sent if "Put" in item)
        if self.cancelled or not records_an_image:
            return None
        self.cancelled += 1
        reasons = [{"Code": "None"}] * (len(sent) - 1) + [{"Code": "TransactionConflict"}]
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "injected"},
                           "CancellationReasons": reasons}, "TransactWriteItems")


def test_a_made_image_whose_record_meets_a_conflict_is_recorded_without_asking_the_provider_again(
        client, monkeypatch):
    from chalicelib import dependencies
    from tests.support.generation import deliver

    monkeypatch.setenv("GENERATION_PROVIDER", "offline")
    monkeypatch.setenv("GENERATION_BACKOFF_SECONDS", "0")
    dependencies.reset()
    provider = dependencies.get_deps().provider
    calls = []
    real_generate = provider.generate
    monkeypatch.setattr(provider, "generate", lambda request: calls.append(request.seed) or real_generate(request))

    pid = _project(client)
    gen = client.http.post(f"{PREFIX}/projects/{pid}/avatars/generate", headers=auth(),
                           body=body({"prompt": "a face", "name": "C"})).json_body
    conflict = ConflictOnce()
    with Hooked("before-call.dynamodb.TransactWriteItems", conflict):
        deliver("generation_worker")

    assert conflict.cancelled == 1
    done = client.http.get(f"{PREFIX}/generations/{gen['id']}", headers=auth()).json_body
    assert done["status"] == "completed", done
    assert len(calls) == 1  # the image was asked for once, though its first record was cancelled
    assert client.http.get(f"{PREFIX}/projects/{pid}", headers=auth()).json_body["avatarCount"] == 1
    assert client.http.get(f"{PREFIX}/stats", headers=auth()).json_body["totalAvatars"] == 1
