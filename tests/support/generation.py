"""Helpers for generation tests: deliver queued messages to the app's handlers the way Lambda's
event source mapping does (real receipt handles, so ChangeMessageVisibility works), over moto."""
from __future__ import annotations

import boto3


def feeder():
    """local.feeder.Feeder bound to the app and moto's SQS (discovering every SQS handler)."""
    from app import app
    from local.feeder import Feeder

    f = Feeder(app, None, "us-east-1", client=boto3.client("sqs", region_name="us-east-1"))
    f.sources = f.discover()
    return f


def deliver(handler_name: str, *, rounds: int = 10, expire_failed: bool = False) -> int:
    """Receive what is visible on the handler's queue and invoke it, until the queue shows nothing.
    Returns the number of messages delivered (a message delivered twice counts twice).
    `expire_failed`: a record left on the queue becomes visible at once, as if its visibility
    timeout had passed (the next round redelivers it)."""
    f = feeder()
    source = next(s for s in f.sources if s.name == handler_name)
    delivered = 0
    for _ in range(rounds):
        messages = f.sqs.receive_message(QueueUrl=source.queue_url, MaxNumberOfMessages=source.batch_size,
                                         WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])
        if not messages:
            break
        f.invoke(source, messages)
        delivered += len(messages)
        if expire_failed:
            for m in messages:
                try:  # deleted ones (handled) have no valid receipt any more
                    f.sqs.change_message_visibility(QueueUrl=source.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                    VisibilityTimeout=0)
                except f.sqs.exceptions.ClientError:
                    pass
    return delivered


def receive_raw(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    return sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                               AttributeNames=["All"]).get("Messages", [])
