"""Every model makes its calls on the container's one DynamoDB client (chalicelib.aws.session), through
the one PynamoDB hook the models override (`_get_connection`): this fails if a PynamoDB upgrade
changes what that override relies on."""
from __future__ import annotations

import pytest

from chalicelib import dependencies
from chalicelib.aws import session
from chalicelib.aws.models import ALL_MODELS, AvatarModel, GenerationModel, ProjectModel, SharedConnection


class Sent(Exception):
    pass


@pytest.fixture()
def captured(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("TABLE_NAME", "avatar-creator-test")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    dependencies.reset()
    requests = []

    def capture(request, **_):
        requests.append((request.headers["X-Amz-Target"].decode().split(".")[1], request.body))
        raise Sent

    session.dynamodb().client.meta.events.register("before-send", capture)
    yield requests
    dependencies.reset()


def test_all_models_use_the_one_client_and_the_configured_table(captured):
    import json

    with pytest.raises(Sent):
        ProjectModel.get("U#a", "P#p")
    with pytest.raises(Sent):
        list(AvatarModel.by_project.query("U#a#P#p"))
    with pytest.raises(Sent):
        list(GenerationModel.active_by_project.query("U#a#P#p#ACTIVE"))

    (op1, body1), (op2, body2), (op3, body3) = captured
    assert (op1, op2, op3) == ("GetItem", "Query", "Query")
    assert {json.loads(b)["TableName"] for b in (body1, body2, body3)} == {"avatar-creator-test"}
    assert json.loads(body2)["IndexName"] == "GSI1" and json.loads(body3)["IndexName"] == "GSI2"
    for model in ALL_MODELS:
        connection = model._get_connection().connection
        assert isinstance(connection, SharedConnection)
        assert connection.client is session.dynamodb().client


def test_a_changed_endpoint_is_followed_after_reset(captured, monkeypatch):
    first = ProjectModel._get_connection().connection.client
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:10")
    dependencies.reset()
    second = ProjectModel._get_connection().connection.client
    assert second is not first
    assert second.meta.endpoint_url == "http://127.0.0.1:10"
