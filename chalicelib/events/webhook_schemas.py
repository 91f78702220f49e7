"""Pydantic models of the /webhooks routes (strict requests, as chalicelib.schemas)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from chalicelib.schemas import Description, Request, Response

EventType = Literal["avatar.ready", "avatar.rejected", "avatar.updated", "avatar.deleted", "generation.completed",
                    "generation.failed", "generation.cancelled", "project.deleted", "avatar.shared",
                    "avatar.share_revoked", "project.member_added", "project.member_removed"]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
EventList = Annotated[list[EventType], Field(min_length=1, max_length=16)]


class WebhookCreate(Request):
    url: Url
    events: EventList | None = None  # every type when left out
    description: Description = ""


class WebhookUpdate(Request):
    url: Url | None = None
    events: EventList | None = None
    description: Description | None = None
    enabled: bool | None = None  # true re-enables a webhook that was disabled after failing


class LastDelivery(Response):
    eventId: str | None
    type: str | None
    status: Literal["delivered", "retrying", "failed"] | None
    statusCode: int | None
    error: str | None
    errorCode: str | None = None
    attempt: int
    at: str | None
    durationMs: int | None


class Webhook(Response):
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabledReason: str | None
    failingSince: str | None
    lastDelivery: LastDelivery | None
    secretRotatedAt: str | None
    createdAt: str
    updatedAt: str


class WebhookWithSecret(Webhook):
    secret: str = Field(description="whsec_ + base64 key: shown only now; sign-check deliveries with it")


class WebhookDelivery(Response):
    eventId: str
    type: str | None
    attempt: int
    status: Literal["delivered", "retrying", "failed"] | None
    statusCode: int | None
    error: str | None
    errorCode: str | None = None
    durationMs: int | None
    at: str | None


class WebhookTestSent(Response):
    event: dict
