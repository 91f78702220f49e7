"""Pydantic request/response models: validation and the OpenAPI description come from here.

Requests are strict (no type coercion) and forbid unknown fields.
JSON is camelCase, as in the original service.
"""
from __future__ import annotations

import functools
import typing
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

T = TypeVar("T")



# No control characters, and at least one visible one (not only spaces or zero-width marks).
# Bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) are refused everywhere: they make
# a name display as something else ("gpj.exe" shown as "exe.jpg").
VISIBLE_TEXT = (r"^[^\x00-\x1F\x7F\u202A-\u202E\u2066-\u2069]*"
                r"[^\x00-\x20\x7F\u00A0\u200B-\u200F\u2028-\u202F\u2060-\u2069\uFEFF]"
                r"[^\x00-\x1F\x7F\u202A-\u202E\u2066-\u2069]*$")
# Free text may span lines (tab, newline) but holds no other control character (NUL included).
FREE_TEXT = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F\u202A-\u202E\u2066-\u2069]*$"
LINE_TEXT = r"^[^\x00-\x1F\x7F\u202A-\u202E\u2066-\u2069]*$"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=VISIBLE_TEXT)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000, pattern=FREE_TEXT)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64, pattern=LINE_TEXT)]
Trait = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=VISIBLE_TEXT)]
Background = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000, pattern=FREE_TEXT)]
# A prompt is free text too (issue 27): it may span lines, but NUL, other control characters and bidi
# overrides and isolates are refused, as in names and descriptions.
Prompt = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=600, pattern=FREE_TEXT)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data):
        """JSON Schema calls 94.0 an integer; strict pydantic would not. Whole floats sent for
        integer fields become ints; anything else (94.5, "94", true) is still refused."""
        if not isinstance(data, dict):
            return data
        ints = _integer_fields(cls)
        return {k: int(v) if k in ints and isinstance(v, float) and v.is_integer() else v for k, v in data.items()}


@functools.cache
def _integer_fields(model: type[BaseModel]) -> frozenset[str]:
    def is_int(annotation) -> bool:
        return annotation is int or any(is_int(a) for a in typing.get_args(annotation))
    return frozenset(name for name, f in model.model_fields.items() if is_int(f.annotation))


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
    # Issue 30: the caller's role on it (`owner` on their own projects) and, on a project shared with
    # them, whose it is.
    myRole: Literal["viewer", "editor", "owner"] | None = None
    homeUserId: str | None = None


# ---- teams (issue 30) ------------------------------------------------------------------------

# chalicelib.auth._USER_ID: what a Lumiku user id (a token's `sub`) may be.
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@:-]*$")]
Role = Literal["viewer", "editor", "owner"]


class MemberAdd(Request):
    userId: UserId
    role: Role


class MemberUpdate(Request):
    role: Role


class Member(Response):
    userId: str
    role: Role
    addedBy: str
    addedAt: str
    home: bool  # the project's creator: an owner for good (cannot leave or be demoted)


class MemberList(Response):
    items: list[Member]


class Me(Response):
    userId: str


class Page(Response, Generic[T]):
    items: list[T]
    nextCursor: str | None


# ---- avatars (shared by projects, uploads, generation, usage) ---------------------------

class PersonaFields(Request):
    personaName: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100, pattern=LINE_TEXT)] | None = None
    personaAge: Annotated[int, Field(ge=1, le=120)] | None = None
    personaPersonality: Annotated[list[Trait], Field(max_length=10)] | None = None
    personaBackground: Background | None = None


# Visual attributes with a closed set of values (issue 30; chalicelib.avatars.vocabulary.VISUAL_VALUES).
HairLength = Literal["bald", "short", "medium", "long"]
Glasses = Literal["none", "glasses", "sunglasses"]
FacialHair = Literal["none", "stubble", "beard", "mustache"]
ClothingStyle = Literal["casual", "formal", "business", "sporty", "streetwear"]
SceneBackground = Literal["plain", "indoor", "nature", "city"]
Expression = Literal["smiling", "neutral", "serious", "laughing"]
# What a suggestion may fill: the visual attributes, and the two person attributes asked for per upload.
SuggestableAttribute = Literal["hairColor", "hairLength", "eyeColor", "glasses", "facialHair", "clothingStyle",
                               "background", "expression", "gender", "ageRange"]


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
    hairLength: HairLength | None = None
    glasses: Glasses | None = None
    facialHair: FacialHair | None = None
    clothingStyle: ClothingStyle | None = None
    background: SceneBackground | None = None
    expression: Expression | None = None


class PersonaOut(Response):
    personaName: str | None = None
    personaAge: int | None = None
    personaPersonality: list[str] = Field(default_factory=list)
    personaBackground: str | None = None


class Traits(PersonaOut):
    """Persona and visual attributes as answered (avatars, presets)."""
    gender: str | None = None
    ageRange: str | None = None
    ethnicity: str | None = None
    bodyType: str | None = None
    hairStyle: str | None = None
    hairColor: str | None = None
    eyeColor: str | None = None
    skinTone: str | None = None
    style: str | None = None
    hairLength: str | None = None
    glasses: str | None = None
    facialHair: str | None = None
    clothingStyle: str | None = None
    background: str | None = None
    expression: str | None = None


class Suggestion(Response):
    value: str
    score: float


class CropOut(Response):
    x: int
    y: int
    size: int


class Avatar(Traits):
    id: str
    projectId: str
    name: str
    status: Literal["uploading", "processing", "ready", "rejected"]
    statusReason: str | None = None
    sourceType: Literal["uploaded", "text_to_image", "preset", "image_to_image"]
    imageUrl: str | None = None
    thumbnailUrl: str | None = None
    displayUrl: str | None = None  # upright WebP, 1024 px on the long side, no metadata
    crop: CropOut | None = None  # the thumbnail's square; null: the centre
    width: int | None = None
    height: int | None = None
    format: str | None = None
    bytes: int | None = None
    prompt: str | None = None
    seed: int | None = None
    generationId: str | None = None
    imageIndex: int | None = None  # which image of its generation (0–3): a batch is shown in that order
    presetId: str | None = None
    sourceAvatarId: str | None = None  # the avatar a restyle or variation was made from
    version: int = 0  # its newest version (each change of name, persona, attributes or crop); 0: never changed
    usageCount: int = 0
    lastUsedAt: str | None = None
    createdAt: str
    updatedAt: str
    suggestionStatus: Literal["pending", "ready", "unavailable"] | None = Field(
        None, description="Attribute suggestions of an upload (null: none asked)")
    suggestions: dict[str, Suggestion] | None = Field(
        None, description="attribute → suggested value and its score (0–1), apart from the avatar's own "
                          "attributes until accepted")


class LineageAvatar(Response):
    """Another avatar of the same user, in brief (the lineage of GET /avatars/{id})."""
    id: str
    name: str | None = None
    status: str | None = None
    sourceType: str | None = None
    createdAt: str | None = None
    thumbnailUrl: str | None = None


class LineageSource(LineageAvatar):
    kind: Literal["restyle", "variation"]  # how this avatar was made from it
    exists: bool  # false: the source was deleted since (only its id is known)


class Derivative(LineageAvatar):
    kind: Literal["restyle", "variation"]


class Derivatives(Response):
    items: list[Derivative]  # the newest 20 avatars made from this one
    hasMore: bool


class AvatarDetail(Avatar):
    source: LineageSource | None = None  # the avatar this one was made from (restyle, variation)
    derivatives: Derivatives


class FieldChange(Response):
    before: Any = None
    after: Any = None


class AvatarVersion(Response):
    version: int
    at: str
    by: str  # the user who made the change
    cause: Literal["edit", "suggestion_accept", "restore"]
    route: str  # the API route it came through
    restoredFrom: int | None = None
    changes: dict[str, FieldChange]  # only the fields that changed
    state: dict[str, Any]  # every versioned field after the change (what a restore of it sets)


class VersionRestored(Response):
    avatar: Avatar
    version: AvatarVersion | None = Field(None, description="the version the restore recorded; null when the "
                                                            "avatar already was in that state (nothing written)")


class ProjectDetail(Project):
    avatars: Page[Avatar]


class Health(Response):
    status: Literal["ok"]
    service: str
    stage: str
    version: str
    provider: Literal["offline", "flux"] | None = None  # which image provider generations use here
    attributeSuggestions: bool = False  # attribute suggestions run on uploads here (issue 30)


class ListQuery(BaseModel):
    """?limit=&cursor= — unknown query parameters are ignored (cache busters), known ones validated."""
    model_config = ConfigDict(extra="ignore")
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, StringConstraints(max_length=2048)] | None = None


class ProjectListQuery(ListQuery):
    shared: Literal["true", "false"] = "false"  # "true": the projects shared with me (issue 30)


class AvatarListQuery(ListQuery):
    sourceType: Literal["uploaded", "text_to_image", "preset", "image_to_image"] | None = None
    gender: ShortText | None = None
    style: ShortText | None = None
    status: Literal["uploading", "processing", "ready", "rejected"] | None = None
    hairLength: HairLength | None = None
    glasses: Glasses | None = None
    facialHair: FacialHair | None = None
    clothingStyle: ClothingStyle | None = None
    background: SceneBackground | None = None
    expression: Expression | None = None
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100, pattern=LINE_TEXT)] | None = None


# ---- uploads and avatar management (issue 3) ----------------------------------------------

UploadContentType = Literal["image/jpeg", "image/png", "image/webp"]


class UploadRequest(PersonaFields, AttributeFields):
    """One file to upload: the avatar's metadata plus what the browser declares about the file.

    The size limit is the `UPLOAD_MAX_BYTES` setting (10 MB), checked by the domain; S3 enforces it
    again through the presigned policy and the worker once more on the real object.
    """
    name: Name
    contentType: UploadContentType
    size: Annotated[int, Field(ge=1)]
    # Visual attributes are suggested for every upload where a model is configured; these two only when asked.
    suggest: Annotated[list[Literal["gender", "ageRange"]], Field(max_length=2)] | None = Field(
        None, description="Also suggest these person attributes from this image (never asked otherwise)")


class UploadBatchRequest(Request):
    """Up to `UPLOAD_BATCH_MAX` (20) files in one call; all or none are accepted."""
    files: Annotated[list[UploadRequest], Field(min_length=1)]


class UploadTicket(Response):
    """A presigned POST: send `fields` then the file (as the last form field, `file`) to `url`."""
    url: str
    fields: dict[str, str]
    expiresAt: str


class UploadCreated(Response):
    avatar: Avatar
    upload: UploadTicket


class UploadBatchCreated(Response):
    items: list[UploadCreated]


class Crop(Request):
    """A square of the upright image, in its pixels: top-left corner and side."""
    x: Annotated[int, Field(ge=0)]
    y: Annotated[int, Field(ge=0)]
    size: Annotated[int, Field(ge=1)]


class AvatarUpdate(PersonaFields, AttributeFields):
    """Partial edit: fields left out stay as they are; a persona or attribute field set to null is cleared."""
    # Optional but not nullable: an avatar always has a name (the schema says so too).
    name: Name = None  # type: ignore[assignment]
    # The thumbnail's square (must lie inside the image; null: back to the centre). The thumbnail is
    # re-made in the background; its URL changes when it is.
    crop: Crop | None = None


class SuggestionAnswer(Request):
    """Which suggestions to accept or dismiss; left out or null: all of them."""
    attributes: Annotated[list[SuggestableAttribute], Field(min_length=1, max_length=10)] | None = None


# ---- usage events, history and stats (issue 5) ----------------------------------------------
# The event is published to other apps as docs/schemas/usage-event.v1.json; keep both in step
# (tests/unit/test_usage_event_schema.py checks they agree). v1 is append-only: new fields are
# optional, nothing is removed or narrowed.

# Shared with the consumer's pydantic-free reader (chalicelib.usage.plain); re-exported here.
from chalicelib.usage.plain import (  # noqa: E402,F401
    USAGE_MAX_CLOCK_SKEW_SECONDS,
    USAGE_METADATA_MAX_BYTES,
    canonical_time,
    storable_number,
)

def _storable_float(value: float) -> float:
    if not storable_number(value):
        raise ValueError("is too close to zero to store (use 0, or a magnitude of at least 1e-128)")
    return value


EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
EventUserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@:-]{1,128}$")]
EventAvatarId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
AppId = Annotated[str, StringConstraints(max_length=64, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
# Unanchored `\S`: not blank. Same meaning in JSON Schema (ECMA), Python re and pydantic's engine.
AppName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S")]
Action = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
ReferenceId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"\S")]
ReferenceType = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
OccurredAt = Annotated[str, StringConstraints(
    pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$")]
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
MetadataValue = (Annotated[str, StringConstraints(max_length=500)]
                 | Annotated[int, Field(ge=-10**15, le=10**15)]
                 | Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False),
                             AfterValidator(_storable_float)]
                 | bool | None)


class _UsageFields(Request):
    appId: AppId
    appName: AppName
    action: Action
    referenceId: ReferenceId | None = None
    referenceType: ReferenceType | None = None
    metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=20, json_schema_extra={"additionalProperties": False})] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_is_small(cls, value: dict | None) -> dict | None:
        import json

        if value is not None and len(json.dumps(value, separators=(",", ":")).encode()) > USAGE_METADATA_MAX_BYTES:
            raise ValueError(f"must serialize to at most {USAGE_METADATA_MAX_BYTES} bytes")
        return value


class UsageEvent(_UsageFields):
    """usage-event.v1: one use of an avatar by another app (SQS message body)."""
    eventId: EventId
    userId: EventUserId
    avatarId: EventAvatarId
    occurredAt: OccurredAt

    @field_validator("occurredAt")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_time(value)


class UsageEventPost(_UsageFields):
    """The same event over HTTP: the user comes from the token and the avatar from the path.
    Send `eventId` to make retries safe; without it each request is a new event."""
    eventId: EventId | None = None
    occurredAt: OccurredAt | None = None

    @field_validator("occurredAt")
    @classmethod
    def _canonical(cls, value: str | None) -> str | None:
        return None if value is None else canonical_time(value)


class UsageRecorded(Response):
    status: Literal["recorded", "duplicate"]
    eventId: str
    avatarId: str
    occurredAt: str
    recordedAt: str | None = None


class UsageRecord(Response):
    eventId: str
    appId: str
    appName: str
    action: str
    referenceId: str | None = None
    referenceType: str | None = None
    metadata: dict | None = None
    occurredAt: str
    recordedAt: str


class AppUsage(Response):
    appId: str
    appName: str
    count: int
    lastUsedAt: str | None = None


class UsageHistory(Response):
    items: list[UsageRecord]
    nextCursor: str | None
    summary: list[AppUsage]


class AvatarsBySource(Response):
    uploaded: int
    text_to_image: int
    preset: int


class Stats(Response):
    totalAvatars: int
    totalProjects: int
    recentUploads: int
    totalUsage: int
    averageUsagePerAvatar: float
    bySourceType: AvatarsBySource
    usageByApp: list[AppUsage]
    activeGenerations: int = 0
    generationsToday: int = Field(0, description="Images counted against today's generation limit (UTC): charged at start, given back for failures that are not the user's")


# ---- presets and persona examples (issue 10) ------------------------------------------------

Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,40}$")]


class CategoryListQuery(ListQuery):
    category: Category | None = None


class Preset(Traits):
    id: str
    category: str
    name: str
    description: str
    prompt: str
    featured: bool
    popularity: int
    previewUrl: str | None = None
    thumbnailUrl: str | None = None


class PersonaExample(PersonaOut):
    id: str
    category: str
    uses: int


# ---- generation (issue 4) -------------------------------------------------------------------

def _multiple_of_16(value: int | None) -> int | None:
    if value is not None and value % 16:
        raise ValueError("must be a multiple of 16")
    return value


ImageSide = Annotated[int, Field(ge=256, le=1536)]
# Images one job makes (issue 19): each its own avatar, seeds seed, seed+1, …; each counts against the daily quota.
NumImages = Annotated[int, Field(ge=1, le=4)]


class GenerateRequest(PersonaFields, AttributeFields):
    prompt: Prompt
    name: Name
    width: ImageSide = 768
    height: ImageSide = 1024
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    numImages: NumImages = 1

    _sides = field_validator("width", "height")(classmethod(lambda cls, v: _multiple_of_16(v)))


class GenerationFailure(Response):
    index: int
    code: str
    message: str


class GenerationMetrics(Response):
    queueMs: int | None = None
    providerMs: int | None = None
    totalMs: int | None = None
    attempts: int


class GenerationImage(Response):
    index: int
    status: Literal["pending", "done", "failed"]
    avatarId: str | None = None
    errorCode: str | None = None
    retrying: bool = Field(False, description="Failed for now; tried again on the next attempt")


class Generation(Response):
    id: str
    projectId: str
    status: Literal["pending", "processing", "completed", "failed", "cancelled"]
    stage: str | None = None
    progress: int
    attempts: int
    errorMessage: str | None = None
    prompt: str | None = None
    negativePrompt: str | None = None
    request: dict
    avatarId: str | None = None
    avatar: Avatar | None = None  # the first of `avatars` (kept for existing clients)
    avatars: list[Avatar] = Field(default_factory=list)
    avatarIds: list[str] = Field(default_factory=list)
    numImages: int = 1
    imagesMade: int = 0
    imagesFailed: int = 0
    failures: list[GenerationFailure] = Field(default_factory=list)
    images: list[GenerationImage] = Field(
        default_factory=list, description="One entry per image asked for, in order: what became of it so far")
    errorCode: str | None = None  # stable: see docs/operations.md "Generation error codes"
    safety: Literal["checked", "unchecked"] | None = None
    model: str | None = None
    provider: str | None = None
    presetId: str | None = None
    createdAt: str
    updatedAt: str
    queuedAt: str | None = None
    startedAt: str | None = None
    completedAt: str | None = None
    deadLetteredAt: str | None = None
    queuePosition: int | None = None  # approximate, while pending (docs/operations.md)
    metrics: GenerationMetrics | None = None


class GenerationListQuery(ListQuery):
    status: Literal["active", "all"] = "all"


class PresetGenerateRequest(PersonaFields, AttributeFields):
    """Start from a preset; any field given here overrides the preset's."""
    projectId: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: Name | None = None
    prompt: Prompt | None = None
    width: ImageSide = 768
    height: ImageSide = 1024
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    numImages: NumImages = 1

    _sides = field_validator("width", "height")(classmethod(lambda cls, v: _multiple_of_16(v)))


class VariationsRequest(Request):
    """N new avatars with the avatar's persona and attributes: a new seed each, and a style each if given."""
    count: Annotated[int, Field(ge=1, le=4)] = 2
    styles: Annotated[list[ShortText], Field(max_length=4)] | None = None
    prompt: Prompt | None = None
    numImages: NumImages = 1  # images per variation (one job each)


class RestyleRequest(Request):
    """A new avatar from this one's image and a prompt (image-to-image); persona and attributes are kept."""
    prompt: Prompt
    style: ShortText | None = None
    strength: Annotated[float, Field(ge=0.1, le=1.0)] = 0.6  # how far from the source image (1: furthest)
    numImages: NumImages = 1
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None


class GenerationList(Response):
    items: list[Generation]
