"""Clients built from the slim botocore data (chalicelib.aws.botocore_data) send exactly what clients
built from botocore's full catalogue send: same endpoint, same signed request, same presigned URL."""
from __future__ import annotations

import datetime
import os
from unittest import mock

import botocore
import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.session import get_session

from chalicelib.aws import botocore_data

NOW = datetime.datetime(2026, 11, 25, 12, 0, 0)
CALLS = {
    "dynamodb": ("get_item", {"TableName": "t", "Key": {"PK": {"S": "USER#a"}, "SK": {"S": "META"}}}),
    "sqs": ("send_message", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q", "MessageBody": "{}"}),
    "s3": ("get_object", {"Bucket": "avatars", "Key": "thumbs/u/a.jpg"}),
    "secretsmanager": ("get_secret_value", {"SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt"}),
    "events": ("put_events", {"Entries": [{"Source": "lumiku.avatar-creator", "DetailType": "avatar.ready",
                                           "Detail": "{}", "EventBusName": "avatar-creator-events"}]}),
}


class Sent(Exception):
    pass


@pytest.fixture(scope="module")
def slim_dir(tmp_path_factory):
    return botocore_data.build(str(tmp_path_factory.mktemp("data") / "slim"))


def _client(service, region, endpoint, slim_dir=None):
    session = get_session()
    session._credentials = Credentials("AKIDEXAMPLE", "secret", "token")
    if slim_dir:
        loader = botocore_data.loader(slim_dir)
        assert loader is not None
        session.register_component("data_loader", loader)
    options = {"retries": {"mode": "standard", "max_attempts": 1}}
    if service == "s3":
        options["signature_version"] = "s3v4"
        if endpoint:
            options["s3"] = {"addressing_style": "path"}
    return session.create_client(service, region_name=region, endpoint_url=endpoint, config=Config(**options))


def _sent(client, operation, params):
    captured = {}

    def capture(request, **_):
        headers = {k: v for k, v in request.headers.items() if k.lower() != "amz-sdk-invocation-id"}
        captured.update(url=request.url, method=request.method, headers=headers, body=request.body)
        raise Sent

    client.meta.events.register("before-send", capture)
    with pytest.raises(Sent):
        getattr(client, operation)(**params)
    return captured


@pytest.mark.parametrize("service", sorted(CALLS))
@pytest.mark.parametrize("region,endpoint", [
    ("us-east-1", None), ("eu-west-1", None), ("cn-north-1", None), ("us-gov-west-1", None),
    ("us-east-1", "http://127.0.0.1:4566"),
])
def test_slim_data_clients_send_the_same_requests(slim_dir, service, region, endpoint):
    operation, params = CALLS[service]
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        full = _client(service, region, endpoint)
        slim = _client(service, region, endpoint, slim_dir)
        assert slim.meta.endpoint_url == full.meta.endpoint_url
        assert slim.meta.partition == full.meta.partition
        assert slim.meta.service_model.operation_names == full.meta.service_model.operation_names
        assert slim.meta.service_model.shape_names == full.meta.service_model.shape_names
        assert _sent(slim, operation, params) == _sent(full, operation, params)
        if service == "s3":
            args = ("get_object", {"Bucket": "avatars", "Key": "a b.jpg"}, 900)
            assert slim.generate_presigned_url(*args) == full.generate_presigned_url(*args)
            post = (dict(Bucket="avatars", Key="uploads/u/a", Fields={"Content-Type": "image/png"},
                         Conditions=[{"Content-Type": "image/png"}, ["content-length-range", 1, 10]], ExpiresIn=300))
            assert slim.generate_presigned_post(**post) == full.generate_presigned_post(**post)


def test_slim_data_holds_only_the_app_services(slim_dir):
    services = {name for name in os.listdir(slim_dir) if os.path.isdir(os.path.join(slim_dir, name))}
    assert services == set(botocore_data.SERVICES)
    assert os.path.getsize(os.path.join(slim_dir, "endpoints.json")) < 200_000  # the full one is ~1.25 MB
    with pytest.raises(botocore.exceptions.UnknownServiceError):
        _client("sns", "us-east-1", None, slim_dir)


def test_slim_models_keep_every_shape_but_no_documentation(slim_dir):
    full = get_session().get_service_model("dynamodb")
    session = get_session()
    session.register_component("data_loader", botocore_data.loader(slim_dir))
    slim = session.get_service_model("dynamodb")
    for name in ("QueryInput", "AttributeValue", "ConditionalCheckFailedException"):
        assert full.shape_for(name).documentation and slim.shape_for(name).documentation == ""
        assert list(slim.shape_for(name).members) == list(full.shape_for(name).members)
    with open(os.path.join(slim_dir, "dynamodb", "2012-08-10", "service-2.json")) as fh:
        assert len(fh.read()) < 200_000  # botocore's is ~560 kB


def test_slim_data_built_for_another_botocore_is_not_used(tmp_path):
    path = botocore_data.build(str(tmp_path / "slim"))
    assert botocore_data.loader(path) is not None
    with open(os.path.join(path, "VERSION"), "w") as fh:
        fh.write("0.0.1\n")
    assert botocore_data.loader(path) is None
    assert botocore_data.loader(str(tmp_path / "missing")) is None


def test_without_the_override_s3_requests_differ(slim_dir):
    """Why SlimLoader overrides `is_builtin_path`: the same slim files through a plain Loader make S3
    presign on another host, so the equality tests fail if an upgrade ignores the override."""
    from botocore.loaders import Loader

    def client(loader):
        session = get_session()
        session._credentials = Credentials("AKIDEXAMPLE", "secret", "token")
        session.register_component("data_loader", loader)
        return session.create_client("s3", region_name="eu-west-1", config=Config(signature_version="s3v4"))

    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        plain = client(Loader(extra_search_paths=[slim_dir], include_default_search_paths=False))
        slim = client(botocore_data.loader(slim_dir))
        full = _client("s3", "eu-west-1", None)
        args = ("get_object", {"Bucket": "avatars", "Key": "a.jpg"}, 900)
        assert slim.generate_presigned_url(*args) == full.generate_presigned_url(*args)
        # Without it: the regional host where botocore's own data presigns on the global one.
        assert plain.generate_presigned_url(*args) != full.generate_presigned_url(*args)
