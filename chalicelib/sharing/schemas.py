"""Pydantic models of the share routes (strict requests, as chalicelib.schemas)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from chalicelib.schemas import LINE_TEXT, Request, Response
from chalicelib.sharing.service import MAX_EXPIRES_IN, MIN_EXPIRES_IN

ShareField = Literal["name", "personaName", "personaAge", "personaPersonality", "personaBackground", "attributes",
                     "prompt"]
Label = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100, pattern=LINE_TEXT)]


class ShareCreate(Request):
    # Seconds until the link stops working: 30 days when left out, at most a year.
    expiresIn: Annotated[int, Field(ge=MIN_EXPIRES_IN, le=MAX_EXPIRES_IN)] | None = None
    label: Label | None = None
    # What the page shows besides the name and image (always shown); ["attributes"] when left out.
    fields: Annotated[list[ShareField], Field(max_length=7)] | None = None


class Share(Response):
    id: str
    avatarId: str
    projectId: str
    label: str | None
    fields: list[str]
    tokenHint: str  # the token's last 4 characters, to tell links apart
    status: Literal["active", "expired", "revoked"]
    createdAt: str
    expiresAt: str
    revokedAt: str | None


class ShareCreated(Share):
    token: str  # shown only in this answer
    link: str  # the page's path on the API: {API}/s/{token}
