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
