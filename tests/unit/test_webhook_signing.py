"""Webhook signatures checked by `standardwebhooks` (PyPI), an implementation that is not ours."""
from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from chalicelib.events import webhooks
from chalicelib.aws.models import WebhookModel
from chalicelib.events.delivery import body_of, signed_headers

EVENT = {"id": "evt_v7k3q9x2m4n8p5r6s1t0u3w2yb", "type": "avatar.ready", "timestamp": "2026-12-02T10:15:30.120Z",
         "data": {"id": "ava_1", "name": "Zoë ✨", "userId": "u1"}}


def test_a_new_secret_is_whsec_and_32_random_bytes():
    import base64

    a, b = webhooks.new_secret(), webhooks.new_secret()
    assert a.startswith("whsec_") and len(base64.b64decode(a[6:])) == 32 and a != b


def test_standard_webhooks_verifies_our_signature_and_refuses_a_changed_body():
    secret = webhooks.new_secret()
    body, now = body_of(EVENT), int(time.time())
    headers = signed_headers([secret], EVENT["id"], now, body)
    assert headers["webhook-id"] == EVENT["id"] and headers["webhook-timestamp"] == str(now)
    assert Webhook(secret).verify(body, headers) == EVENT  # non-ASCII text survives as UTF-8
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"ava_1", b"ava_2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)


def test_during_the_overlap_after_a_rotation_both_secrets_verify_and_after_it_only_the_new():
    old, new = webhooks.new_secret(), webhooks.new_secret()
    now = int(time.time())
    hook = WebhookModel("U#u1", "WH#whk_1", secret=new, previous_secret=old, previous_secret_expires=now + 60)
    body = body_of(EVENT)
    headers = signed_headers(webhooks.signing_secrets(hook, now), EVENT["id"], now, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers) == Webhook(new).verify(body, headers) == EVENT
    later = signed_headers(webhooks.signing_secrets(hook, now + 61), EVENT["id"], now, body)
    assert Webhook(new).verify(body, later) == EVENT
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, later)
