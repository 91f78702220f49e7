"""Functional tests: the Chalice app in process (chalice.test.Client) over moto's in-process AWS.

Resources come from infra/resources.json through the same provisioner the local stack uses.
"""
from __future__ import annotations

import json
import os

import boto3
import pytest
from chalice.test import Client, HTTPResponse, TestHTTPClient
from tests.support.moto import mock_aws

from chalicelib import dependencies
from chalicelib.auth import issue_token

SECRET = "functional-test-secret-0123456789abcdef"
PREFIX = "/api/apps/avatar-creator"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "JWT_SECRET": SECRET, "STAGE": "test",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        from local.provision import provision

        outputs = provision(endpoint_url=None, region="us-east-1")
        env = {
            "TABLE_NAME": outputs["TableName"], "GENERATION_MAX_ATTEMPTS": str(outputs["GenerationMaxAttempts"]),
            "UPLOAD_BUCKET": outputs["UploadBucket"], "UPLOAD_QUEUE_URL": outputs["UploadQueueUrl"],
            "GENERATION_QUEUE_URL": outputs["GenerationQueueUrl"], "GENERATION_DLQ_URL": outputs["GenerationDlqUrl"],
            "USAGE_EVENTS_QUEUE_URL": outputs["UsageEventsQueueUrl"], "CLEANUP_QUEUE_URL": outputs["CleanupQueueUrl"],
            "EXPORT_QUEUE_URL": outputs["ExportQueueUrl"],
            "EVENT_BUS_NAME": outputs["EventBusName"], "WEBHOOK_QUEUE_URL": outputs["WebhookQueueUrl"],
            "WEBHOOK_DLQ_URL": outputs["WebhookDlqUrl"], "STREAM_RECORDS_DLQ_URL": outputs["StreamRecordsDlqUrl"],
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        dependencies.reset()
        yield outputs
        dependencies.reset()


class GatewayClient(Client):
    """chalice.test.Client whose gateway errors (no token, denied, no route) get the same rewrite
    as API Gateway's GatewayResponses on AWS and the local server: 401/404 with the error shape."""

    @property
    def http(self) -> TestHTTPClient:
        if self._http_client is None:
            self._http_client = _GatewayHTTPClient(self._app, self._chalice_config)
        return self._http_client


class _GatewayHTTPClient(TestHTTPClient):
    def _error_response(self, e):
        from local.gateway import gateway_error_response

        status, headers, payload = gateway_error_response(e)
        return HTTPResponse(headers=headers, body=payload, status_code=status)


@pytest.fixture
def client(aws):
    from app import app

    with GatewayClient(app) as c:
        yield c


def token(user: str = "alice", **kwargs) -> str:
    return issue_token(user, secret=SECRET, **kwargs)


def auth(user: str = "alice") -> dict:
    return {"Authorization": f"Bearer {token(user)}", "Content-Type": "application/json"}


def body(data) -> bytes:
    return json.dumps(data).encode()


def drain(client, aws_outputs: dict, queue_key: str, handler_name: str, max_rounds: int = 10) -> int:
    """Feed the queue's messages to the app's handler the way the event source mapping does.

    Never long-polls: the queues' ReceiveMessageWaitTimeSeconds (20 s) would make the last, empty
    receive wait that long."""
    from app import app

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = aws_outputs[queue_key]
    handled = 0
    for _ in range(max_rounds):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            event = client.events.generate_sqs_event(queue_name=url.rsplit("/", 1)[1], message_bodies=[m["Body"]])
            result = client.lambda_.invoke(handler_name, event)
            payload = result.payload or {}
            if not payload.get("batchItemFailures"):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            handled += 1
    return handled
