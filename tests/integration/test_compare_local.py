"""Compare's daily counters under concurrency, on the embedded local stack (ministack over HTTP: moto's
in-process transactions are not atomic across threads, so concurrent writes are proved here): the same
usage reports sent by several clients at once are counted once, on the day they happened."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import requests

from tests.support.usage import domain_on_stack, new_project, ready_avatar


def test_the_same_reports_sent_concurrently_count_once_per_day(local_stack):
    user = f"cmp-{uuid.uuid4().hex[:10]}"
    with domain_on_stack(local_stack.outputs, local_stack.jwt_secret) as deps:
        project = new_project(deps.dynamodb, user)
        a, b = (ready_avatar(deps.dynamodb, user, project, name=n) for n in ("A", "B"))
    headers = {"Authorization": f"Bearer {local_stack.token(user)}"}
    now = datetime.now(timezone.utc)
    two_days_ago = now - timedelta(days=2)
    reports = [(a, {"eventId": "same-1", "appId": "pose-generator", "appName": "Pose", "action": "use",
                    "occurredAt": two_days_ago.strftime("%Y-%m-%dT%H:%M:%S.000Z")})] * 8
    reports += [(b, {"eventId": f"b-{i}", "appId": "video-generator", "appName": "Video", "action": "use"})
                for i in range(3) for _ in range(4)]

    def send(report):
        avatar, data = report
        for _ in range(20):  # a 503 (busy: a transaction met a concurrent one) is retried, as a client would
            resp = requests.post(local_stack.api(f"/avatars/{avatar}/usage"), json=data, headers=headers, timeout=20)
            if resp.status_code != 503:
                return data["eventId"], resp.status_code
        return data["eventId"], resp.status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, reports))

    for event_id in {e for e, _ in answers}:
        codes = sorted(c for e, c in answers if e == event_id)
        assert codes.count(201) == 1 and set(codes) <= {200, 201}, (event_id, codes)
    resp = requests.get(local_stack.api(f"/projects/{project}/compare?avatars={a},{b}&days=7"), headers=headers,
                        timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    day = lambda moment: moment.strftime("%Y-%m-%d")  # noqa: E731
    first, second = body["avatars"]
    assert first["total"] == 1 and first["daily"][body["dates"].index(day(two_days_ago))] == 1
    assert second["total"] == 3 and second["daily"][-1] == 3 and second["byApp"][0]["appId"] == "video-generator"
