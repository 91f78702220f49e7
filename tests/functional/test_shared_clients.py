"""A cold container builds one botocore client per service, however many models a request touches."""
from __future__ import annotations

from collections import Counter

from botocore import handlers as botocore_handlers

from chalicelib import dependencies
from tests.functional.conftest import PREFIX, auth, body
from tests.support.usage import new_project, ready_avatar


class ClientsCreated:
    """Counts botocore clients built while active, by service (botocore's `creating-client-class` event)."""

    def __init__(self) -> None:
        self.services: Counter[str] = Counter()
        self._handler = ("creating-client-class", self._on_create)

    def _on_create(self, event_name: str, **_):
        self.services[event_name.split(".", 1)[1]] += 1

    def __enter__(self) -> "ClientsCreated":
        botocore_handlers.BUILTIN_HANDLERS.append(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        botocore_handlers.BUILTIN_HANDLERS.remove(self._handler)


def test_models_transactions_and_storage_share_one_client_per_service(client):
    deps = dependencies.get_deps()
    project = new_project(deps.dynamodb, "alice")
    avatar = ready_avatar(deps.dynamodb, "alice", project)
    dependencies.reset()  # a cold container: nothing built yet

    with ClientsCreated() as created:
        # Project + Avatar models and presigned URLs; then a transaction (usage) and another model read.
        assert client.http.get(f"{PREFIX}/projects/{project}", headers=auth("alice")).status_code == 200
        used = client.http.post(f"{PREFIX}/avatars/{avatar}/usage", headers=auth("alice"),
                                body=body({"eventId": "e-1", "appId": "pose", "appName": "Pose", "action": "use"}))
        assert used.status_code in (200, 201), used.body
        assert client.http.get(f"{PREFIX}/stats", headers=auth("alice")).status_code == 200

    assert created.services == {"dynamodb": 1, "s3": 1}


def test_a_fresh_containers_first_request_uses_the_configured_table(client, monkeypatch):
    """GET /projects reaches a model before anything asks for the dependencies: the models must
    still be bound to the configured table (not PynamoDB's class defaults), on the shared client."""
    import boto3

    from chalicelib.aws.models import ALL_MODELS, DEFAULT_TABLE, SharedConnection

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    spec = ddb.describe_table(TableName=DEFAULT_TABLE)["Table"]
    ddb.create_table(
        TableName="avatar-creator-alt", BillingMode="PAY_PER_REQUEST", KeySchema=spec["KeySchema"],
        AttributeDefinitions=spec["AttributeDefinitions"],
        GlobalSecondaryIndexes=[{k: g[k] for k in ("IndexName", "KeySchema", "Projection")}
                                for g in spec.get("GlobalSecondaryIndexes", [])])
    monkeypatch.setenv("TABLE_NAME", "avatar-creator-alt")
    dependencies.reset()
    project = new_project(dependencies.get_deps().dynamodb, "alice")  # only in the alt table
    # A fresh container: class defaults, nothing built.
    dependencies.reset()
    for model in ALL_MODELS:
        model.Meta.table_name = DEFAULT_TABLE

    listed = client.http.get(f"{PREFIX}/projects", headers=auth("alice"))

    assert listed.status_code == 200, listed.body
    assert [p["id"] for p in listed.json_body["items"]] == [project]
    from chalicelib.aws.models import ProjectModel
    assert ProjectModel.Meta.table_name == "avatar-creator-alt"
    assert isinstance(ProjectModel._connection.connection, SharedConnection)
