"""Helpers for usage tests: ready avatars made through the domain (so every counter is right),
sample usage events, and sending/reading the usage queues."""
from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections import defaultdict
from typing import Any, Iterable, Iterator

from chalicelib import clock, dependencies, ids

from chalicelib.avatars import service as avatars

from chalicelib.projects import service as projects


def new_project(connection: Any, user_id: str, name: str = "Usage") -> str:
    return projects.create_project(connection, user_id, name, "").id


def ready_avatar(connection: Any, user_id: str, project_id: str, *, source_type: str = "uploaded",
                 name: str = "Model") -> str:
    """An avatar taken to `ready` the way every source does it (mark_ready), so the project's
    avatarCount, the user's totals and today's uploads all count it."""
    avatar_id = ids.new_id("ava")
    avatar = avatars.new_avatar(user_id=user_id, project_id=project_id, avatar_id=avatar_id, name=name,
                                source_type=source_type, status="processing", fields={})
    avatar.save()
    ok = avatars.mark_ready(connection, avatar, image_key=f"images/{user_id}/{avatar_id}.jpg",
                            thumbnail_key=f"thumbs/{user_id}/{avatar_id}.jpg", width=512, height=512, fmt="JPEG",
                            size_bytes=1000, from_statuses=("processing",))
    assert ok, "mark_ready refused a fresh avatar"
    return avatar_id


def event(user_id: str, avatar_id: str, **overrides: Any) -> dict:
    """A valid usage-event.v1 (a fresh eventId, occurred just now) with any field overridden
    (`...` leaves a field out)."""
    body = {
        "eventId": f"evt-{uuid.uuid4().hex}",
        "userId": user_id,
        "avatarId": avatar_id,
        "appId": "pose-generator",
        "appName": "Pose Generator",
        "action": "pose.generated",
        "referenceId": "job-1",
        "referenceType": "pose_job",
        "metadata": {"poses": 4, "hd": True},
        "occurredAt": clock.now_iso(),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def body(data: dict | str) -> str:
    return data if isinstance(data, str) else json.dumps(data)


def send_batch(sqs: Any, queue_url: str, bodies: Iterable[dict | str]) -> int:
    """SendMessageBatch in tens; returns how many were accepted (a failed entry raises)."""
    items = [body(b) for b in bodies]
    sent = 0
    for start in range(0, len(items), 10):
        chunk = items[start:start + 10]
        result = sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "MessageBody": text} for i, text in enumerate(chunk)])
        assert not result.get("Failed"), result.get("Failed")
        sent += len(result.get("Successful", []))
    return sent


def take_all(sqs: Any, queue_url: str, *, settle: float = 0.0, wait: int = 0) -> list[dict]:
    """Receive and delete every message in the queue (with attributes). `settle` keeps polling
    until the queue has stayed empty that long, for messages still on their way."""
    out: list[dict] = []
    quiet_since = time.monotonic()
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                   MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
        if msgs:
            out += msgs
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return out
        else:
            time.sleep(0.05)


def attribute(message: dict, name: str) -> str | None:
    value = (message.get("MessageAttributes") or {}).get(name)
    return value.get("StringValue") if value else None


def queue_depth(sqs: Any, queue_url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


@contextlib.contextmanager
def domain_on_stack(outputs: dict, jwt_secret: str) -> Iterator[Any]:
    """Point this process's domain code (models, get_deps()) at a running local stack, for seeding
    what has no API (ready avatars without image uploads); restores the environment afterwards."""
    from local.stack import app_environment

    saved = dict(os.environ)
    os.environ.update(app_environment(outputs, jwt_secret))
    dependencies.reset()
    try:
        yield dependencies.get_deps()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        dependencies.reset()


def expected_effects(events: Iterable[dict]) -> dict:
    """What a set of distinct, valid events must leave behind: per avatar {count, lastUsedAt,
    apps: {appId: {count, lastUsedAt, appName}}} and per app {count, lastUsedAt} for the user."""
    per_avatar: dict = defaultdict(lambda: {"count": 0, "lastUsedAt": None, "apps": {}})
    per_app: dict = {}
    for e in events:
        moment = clock.iso(_parse(e["occurredAt"]))
        a = per_avatar[e["avatarId"]]
        a["count"] += 1
        a["lastUsedAt"] = max(a["lastUsedAt"] or moment, moment)
        for bucket in (a["apps"], per_app):
            app = bucket.setdefault(e["appId"], {"count": 0, "lastUsedAt": moment, "appName": e["appName"]})
            app["count"] += 1
            if moment >= app["lastUsedAt"]:
                app["lastUsedAt"], app["appName"] = moment, e["appName"]
    return {"avatars": dict(per_avatar), "apps": per_app}


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)
