"""The fast presigner must answer exactly what botocore answers: same URL, byte for byte."""
from __future__ import annotations

import datetime
from unittest import mock

import pytest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.session import get_session

from chalicelib.aws.presign import Credentials, for_client, frozen

NOW = datetime.datetime(2026, 11, 25, 23, 59, 58, tzinfo=datetime.timezone.utc)


def _client(region: str, endpoint: str | None, token: str | None):
    session = get_session()
    session._credentials = BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    options = {"signature_version": "s3v4"}
    if endpoint:
        options["s3"] = {"addressing_style": "path"}
    client = session.create_client("s3", region_name=region, endpoint_url=endpoint, config=Config(**options))
    return session, client


@pytest.mark.parametrize("region,endpoint", [
    ("us-east-1", "http://127.0.0.1:4566"),
    ("eu-west-1", "http://localhost:4566"),
    ("us-east-1", None),
    ("eu-west-1", None),
])
@pytest.mark.parametrize("token", [None, "IQoJb3JpZ2luX2VjE/+session==token"])
@pytest.mark.parametrize("key", [
    "thumbs/alice/01HZX.jpg",
    "images/u 1/a+b=c~d.png",
    "presets/café-ü.webp",
])
def test_presigned_get_is_byte_identical_to_botocore(region, endpoint, token, key):
    session, client = _client(region, endpoint, token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        expected = client.generate_presigned_url("get_object", Params={"Bucket": "avatars-bucket", "Key": key},
                                                 ExpiresIn=900)
        presigner = for_client(client, "avatars-bucket", frozen(session.get_credentials()))
    presigner._clock = NOW.timestamp
    assert presigner.presign_get(key, 900) == expected


def test_signing_key_follows_the_day_and_the_credentials():
    session, client = _client("us-east-1", "http://127.0.0.1:4566", None)
    creds = [Credentials("AK1", "secret-one", None)]
    presigner = for_client(client, "b", lambda: creds[0])
    presigner._clock = NOW.timestamp
    first = presigner.presign_get("k", 60)
    presigner._clock = lambda: NOW.timestamp() + 2  # next day (UTC)
    next_day = presigner.presign_get("k", 60)
    assert "20261126%2Fus-east-1" in next_day and first.split("Signature=")[1] != next_day.split("Signature=")[1]
    creds[0] = Credentials("AK1", "secret-two", "tok")
    rotated = presigner.presign_get("k", 60)
    assert "X-Amz-Security-Token=tok" in rotated
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=(NOW + datetime.timedelta(seconds=2)).replace(tzinfo=None)):
        session._credentials = BotoCredentials("AK1", "secret-two", "tok")
        client2 = session.create_client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:4566",
                                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        assert rotated == client2.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"},
                                                         ExpiresIn=60)
