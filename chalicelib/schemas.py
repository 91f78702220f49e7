"""Pydantic request/response models: validation and the OpenAPI description come from here.

Requests are strict (no type coercion) and forbid unknown fields.
JSON is camelCase, as in the original service.
"""
from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
Trait = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Background = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- errors -----------------------------------------------------------------------------

class ErrorDetail(Response):
    code: str
    message: str
    details: dict | list = Field(default_factory=dict)


class ErrorBody(Response):
    error: ErrorDetail


# ---- projects ---------------------------------------------------------------------------

class ProjectCreate(Request):
    name: Name
    description: Description = ""


class ProjectUpdate(Request):
    name: Name | None = None
    description: Description | None = None


class Project(Response):
    id: str
    name: str
    description: str
    avatarCount: int
    createdAt: str
    updatedAt: str


class Page(Response, Generic[T]):
    items: list[T]
    nextCursor: str | None


# ---- avatars (shared by projects, uploads, generation, usage) ---------------------------

class PersonaFields(Request):
    personaName: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    personaAge: Annotated[int, Field(ge=1, le=120)] | None = None
    personaPersonality: Annotated[list[Trait], Field(max_length=10)] | None = None
    personaBackground: Background | None = None


class AttributeFields(Request):
    gender: ShortText | None = None
    ageRange: ShortText | None = None
    ethnicity: ShortText | None = None
    bodyType: ShortText | None = None
    hairStyle: ShortText | None = None
    hairColor: ShortText | None = None
    eyeColor: ShortText | None = None
    skinTone: ShortText | None = None
    style: ShortText | None = None


class Avatar(Response):
    id: str
    projectId: str
    name: str
    status: Literal["uploading", "processing", "ready", "rejected"]
    statusReason: str | None = None
    sourceType: Literal["uploaded", "text_to_image", "preset"]
    imageUrl: str | None = None
    thumbnailUrl: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    bytes: int | None = None
    personaName: str | None = None
    personaAge: int | None = None
    personaPersonality: list[str] = Field(default_factory=list)
    personaBackground: str | None = None
    gender: str | None = None
    ageRange: str | None = None
    ethnicity: str | None = None
    bodyType: str | None = None
    hairStyle: str | None = None
    hairColor: str | None = None
    eyeColor: str | None = None
    skinTone: str | None = None
    style: str | None = None
    prompt: str | None = None
    seed: int | None = None
    generationId: str | None = None
    presetId: str | None = None
    usageCount: int = 0
    lastUsedAt: str | None = None
    createdAt: str
    updatedAt: str


class ProjectDetail(Project):
    avatars: Page[Avatar]


class Health(Response):
    status: Literal["ok"]
    service: str
    stage: str
    version: str


class ListQuery(BaseModel):
    """?limit=&cursor= — unknown query parameters are ignored (cache busters), known ones validated."""
    model_config = ConfigDict(extra="ignore")
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, StringConstraints(max_length=2048)] | None = None


class AvatarListQuery(ListQuery):
    sourceType: Literal["uploaded", "text_to_image", "preset"] | None = None
    gender: ShortText | None = None
    style: ShortText | None = None
    status: Literal["uploading", "processing", "ready", "rejected"] | None = None
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
