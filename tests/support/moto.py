"""moto's in-process AWS, as every functional test starts it."""
from __future__ import annotations

from typing import Any

from moto import mock_aws as _mock_aws

# moto's documented `reset_boto3_session` option: by default each mock start drops boto3's default
# session, so every test's first `boto3.client(...)` parsed botocore's service models again (~0.3 s a
# test, a third of the functional suite's CPU). The session holds no AWS state: moto's backends are
# still reset on every start.
CONFIG = {"core": {"reset_boto3_session": False}}


def mock_aws() -> Any:
    return _mock_aws(config=CONFIG)


def atomic_dynamodb(monkeypatch: Any) -> None:
    """Each DynamoDB request applied whole, as DynamoDB does: moto handles a request without a lock (it
    deep-copies an item while another thread's update changes it), so tests that call the domain from
    several threads serialize moto's request handling. The code under test is untouched."""
    import threading

    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original = DynamoHandler.call_action

    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoHandler, "call_action", locked)
