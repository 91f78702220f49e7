"""PynamoDB models: one table (`avatar-creator`), keys designed from the access patterns.

The user id is part of every partition key, so no read can reach another
user's item by construction: a foreign id simply is not found (404).
See docs/data-model.md for each access pattern and the one operation serving it.

Key layout (PK / SK):
    U#{uid}              / P#{pid}            project          GSI1: -
    U#{uid}              / STATS              per-user counters
    U#{uid}              / DAY#{yyyy-mm-dd}   per-user daily counters (uploads, generations)
    U#{uid}              / IDEM#{key}         Idempotency-Key -> generation id
    U#{uid}              / DELETING#{pid}     tombstone while a deleted project is cleaned up  GSI3 (sweep)
    U#{uid}#A#{aid}      / META               avatar           GSI1: U#{uid}#P#{pid} / A#{aid}
    U#{uid}#A#{aid}#H#{n} / USE#{ts}#{app}#{eid}  usage history item, n = crc32(app#eid) mod 4 (newest first =
                                              descending SK; rows written before issue 32 sit under U#{uid}#A#{aid})
    U#{uid}#A#{aid}      / APP#{appId}        per-app usage summary of the avatar
    U#{uid}#EVT#{app}#{eid} / EVT             usage event dedupe marker (exactly-once effects, TTL)
    RATE#{kind}#{uid}#{s} / W                 a user's requests of one kind in epoch second s (TTL); its own
                                              partition, so a client hammering past 429s never touches U#{uid}
    U#{uid}              / APPUSE#{appId}     per-user usage by app (AppUsageSummaryModel; /stats chart)
    U#{uid}#G#{gid}      / META               generation       GSI1: U#{uid}#P#{pid} / G#{gid}
                                                               GSI2 (sparse, only while active):
                                                               U#{uid}#P#{pid}#ACTIVE / G#{gid}
    FILE#{s3 key}        / INTENT             a derived file about to be written (GSI3 FILES#{0..15} / {check at}#{PK},
                                              TTL): the sweeper checks only expired intents for stray files
    (sparse GSI3 "sweep": SWEEP#{0..3} / {deadline}#{PK} on work that must end by a deadline — an active
     generation, an uploading or deleting avatar, a tombstone; the sweeper queries what is overdue)
    U#{uid}              / WH#{wid}           webhook (all of a user's: one Query, SK begins_with WH#)
    U#{uid}              / WEBHOOKS           the user's webhook count (the limit, in the create transaction)
    U#{uid}#WH#{wid}     / D#{ts}#{eid}#{n}   delivery attempt (TTL)     / E#{eid}  delivered marker (TTL)
    PRESET               / {category}#{id}    shared preset    GSI1: PRESET#ID / {id}
    PERSONA              / {category}#{id}    persona example  GSI1: PERSONA#ID / {id}
    U#{uid}#S#{sid}      / META               share link (issue 29; docs/sharing.md)  GSI1: U#{uid}#A#{aid}#S / S#{sid}
    SHARE#{sha256(token)} / T                 a share link's token → its share (the token itself is never stored)
    U#{uid}#A#{aid}#D    / {yyyy-mm-dd}#{app} an avatar's uses by one app in one UTC day (issue 29, compare; TTL 400 d)
    U#{uid}#A#{aid}      / V#{n:08d}          avatar version n (issue 29; the newest 100 kept)
                         (an avatar made from another is also in GSI2: U#{uid}#A#{sourceId}#D / A#{aid})
    PRJ#{pid}            / HOME               a project's home user and member counts (issue 30, teams)
    PRJ#{pid}            / M#{uid}            a membership     GSI1: U#{uid}#SHARED / {addedAt}#{pid}
    AVA#{aid} | GEN#{gid} | SHR#{sid} / HOME  where an avatar's / a generation's / a share link's data lives
"""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.connection import Connection, TableConnection
from pynamodb.models import Model

from chalicelib.aws import session
from chalicelib.config import get_settings

DEFAULT_TABLE = "avatar-creator"


# ---- key helpers (the only place that knows the layout) ---------------------------------

def user_pk(user_id: str) -> str:
    return f"U#{user_id}"


def project_sk(project_id: str) -> str:
    return f"P#{project_id}"


def avatar_pk(user_id: str, avatar_id: str) -> str:
    return f"U#{user_id}#A#{avatar_id}"


def generation_pk(user_id: str, generation_id: str) -> str:
    return f"U#{user_id}#G#{generation_id}"


def project_items_pk(user_id: str, project_id: str) -> str:
    """GSI1 partition holding a project's avatars (A#…) and generations (G#…)."""
    return f"U#{user_id}#P#{project_id}"


def project_active_pk(user_id: str, project_id: str) -> str:
    """GSI2 partition holding a project's pending/processing generations only."""
    return f"U#{user_id}#P#{project_id}#ACTIVE"


def usage_event_pk(user_id: str, app_id: str, event_id: str) -> str:
    """Events are deduplicated per (user, app, eventId): two apps may pick the same eventId."""
    return f"U#{user_id}#EVT#{app_id}#{event_id}"


HISTORY_SHARDS = 4


def history_shard(app_id: str, event_id: str) -> int:
    import zlib

    return zlib.crc32(f"{app_id}#{event_id}".encode()) % HISTORY_SHARDS


def history_pk(user_id: str, avatar_id: str, shard: int) -> str:
    """A usage history row's partition: the avatar's history is written over HISTORY_SHARDS partitions
    of its own, so a hot avatar's rows (2 write units each in the recording transaction) neither
    share its META/APP# partition nor exceed one partition's 1,000 units/s below ~2,000 events/s."""
    return f"{avatar_pk(user_id, avatar_id)}#H#{shard}"


def history_pks(user_id: str, avatar_id: str) -> list[str]:
    """Every partition an avatar's history may be in: the avatar's own (rows written before issue 32,
    read and deleted until they are gone) and its shards."""
    return [avatar_pk(user_id, avatar_id)] + [history_pk(user_id, avatar_id, n) for n in range(HISTORY_SHARDS)]


def avatar_pk_of(pk: str) -> str:
    """The avatar partition a history shard or its daily counters belong to (itself for any other key)."""
    head, sep, shard = pk.rpartition("#H#")
    if sep and "#A#" in head and shard.isdigit():
        return head
    if pk.endswith("#D") and "#A#" in pk:  # its daily counters (avatar_days_pk)
        return pk[:-2]
    return pk


def rate_window_pk(kind: str, user_id: str, second: int) -> str:
    """A rate window is a partition of its own (not an item of `U#{uid}`): refused requests still cost a
    write unit, and those must not land beside the user's counters (STATS, DAY#, APPUSE#). A new key
    every second also spreads a sustained flood over partitions instead of heating one."""
    return f"RATE#{kind}#{user_id}#{second}"


SWEEP_SHARDS = 4


def sweep_pk(item_pk: str) -> str:
    """The sweep index partition of an item: a few shards, so starting work never piles onto one key."""
    import zlib

    return f"SWEEP#{zlib.crc32(item_pk.encode()) % SWEEP_SHARDS}"


def sweep_sk(deadline_iso: str, item_pk: str) -> str:
    return f"{deadline_iso}#{item_pk}"


def webhook_sk(webhook_id: str) -> str:
    return f"WH#{webhook_id}"


def webhook_items_pk(user_id: str, webhook_id: str) -> str:
    """A webhook's delivery attempts and delivered markers."""
    return f"U#{user_id}#WH#{webhook_id}"


META = "META"
STATS = "STATS"
PRESET_PK = "PRESET"
PRESET_BY_ID = "PRESET#ID"
PERSONA_PK = "PERSONA"
PERSONA_BY_ID = "PERSONA#ID"


# ---- indexes ----------------------------------------------------------------------------

class GSI1(GlobalSecondaryIndex):
    class Meta:
        index_name = "GSI1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(range_key=True, attr_name="GSI1SK")


class GSI2(GlobalSecondaryIndex):
    class Meta:
        index_name = "GSI2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(range_key=True, attr_name="GSI2SK")


class SweepIndex(GlobalSecondaryIndex):
    """GSI3: what must end by a deadline (see the module docstring); keys only."""
    class Meta:
        index_name = "GSI3"
        projection = KeysOnlyProjection()

    sweep_pk = UnicodeAttribute(hash_key=True, attr_name="GSI3PK")
    sweep_sk = UnicodeAttribute(range_key=True, attr_name="GSI3SK")


# ---- value objects ----------------------------------------------------------------------

class PersonaMap(MapAttribute):
    name = UnicodeAttribute(null=True)
    age = NumberAttribute(null=True)
    personality = ListAttribute(of=UnicodeAttribute, null=True)
    background = UnicodeAttribute(null=True)


class AttributesMap(MapAttribute):
    gender = UnicodeAttribute(null=True)
    age_range = UnicodeAttribute(null=True, attr_name="ageRange")
    ethnicity = UnicodeAttribute(null=True)
    body_type = UnicodeAttribute(null=True, attr_name="bodyType")
    hair_style = UnicodeAttribute(null=True, attr_name="hairStyle")
    hair_color = UnicodeAttribute(null=True, attr_name="hairColor")
    eye_color = UnicodeAttribute(null=True, attr_name="eyeColor")
    skin_tone = UnicodeAttribute(null=True, attr_name="skinTone")
    style = UnicodeAttribute(null=True)
    # Issue 30: visual attributes a suggestion can fill (values: chalicelib.avatars.vocabulary.VISUAL_VALUES).
    hair_length = UnicodeAttribute(null=True, attr_name="hairLength")
    glasses = UnicodeAttribute(null=True)
    facial_hair = UnicodeAttribute(null=True, attr_name="facialHair")
    clothing_style = UnicodeAttribute(null=True, attr_name="clothingStyle")
    background = UnicodeAttribute(null=True)
    expression = UnicodeAttribute(null=True)


class CropMap(MapAttribute):
    """A square chosen for the thumbnail, in the upright image's pixels."""
    x = NumberAttribute()
    y = NumberAttribute()
    size = NumberAttribute()


# ---- models -----------------------------------------------------------------------------

class _Meta:
    table_name = DEFAULT_TABLE
    region = "us-east-1"
    host = None


class _Model(Model):
    """What every model of the table shares: its table, region and endpoint from the settings, and
    the one DynamoDB client of the container."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        # PynamoDB gives every model class a Connection of its own, each building its own botocore
        # session and client on first use: ~30 ms apiece on a cold start (measured: bench note in
        # docs/architecture.md), paid again for every model a request touches — the generation worker
        # touches seven. PynamoDB has no public way to pass a connection (pynamodb#1245), so this
        # override of its one private hook swaps the model's Connection for a SharedConnection (public
        # API: `TableConnection.connection`, `Connection.add_meta_table`).
        # tests/unit/test_model_connections.py fails if a PynamoDB upgrade changes what this relies on.
        settings = get_settings()
        meta = cls.Meta
        if (meta.table_name, meta.region, meta.host) != (settings.table_name, settings.region,
                                                         settings.aws_endpoint_url):
            meta.table_name, meta.region, meta.host = settings.table_name, settings.region, settings.aws_endpoint_url
        table = super()._get_connection()  # rebuilt by PynamoDB when the table name changed
        if not isinstance(table.connection, SharedConnection):
            shared = SharedConnection(region=meta.region, host=meta.host)
            shared.add_meta_table(table.connection.get_meta_table(meta.table_name))
            table.connection = shared
        return table


class ProjectModel(_Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    id = UnicodeAttribute()
    user_id = UnicodeAttribute(attr_name="userId")
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    # Maintained with atomic ADD in the same transaction that creates/deletes an avatar.
    avatar_count = NumberAttribute(default=0, attr_name="avatarCount")
    created_at = UnicodeAttribute(attr_name="createdAt")
    updated_at = UnicodeAttribute(attr_name="updatedAt")


class AvatarModel(_Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default=META)
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(attr_name="GSI1SK")
    by_project = GSI1()

    id = UnicodeAttribute()
    user_id = UnicodeAttribute(attr_name="userId")
    project_id = UnicodeAttribute(attr_name="projectId")
    name = UnicodeAttribute()
    name_lower = UnicodeAttribute(attr_name="nameLower")  # for case-insensitive contains() search
    source_type = UnicodeAttribute(attr_name="sourceType")  # uploaded | text_to_image | preset
    status = UnicodeAttribute()  # uploading | ready | rejected | deleting
    status_reason = UnicodeAttribute(null=True, attr_name="statusReason")
    # Why an upload was rejected, for machines: too_large | unsupported_type | corrupt | internal | …
    status_code = UnicodeAttribute(null=True, attr_name="statusCode")
    persona = PersonaMap(null=True)
    attributes = AttributesMap(null=True)

    upload_key = UnicodeAttribute(null=True, attr_name="uploadKey")
    upload_content_type = UnicodeAttribute(null=True, attr_name="uploadContentType")
    image_key = UnicodeAttribute(null=True, attr_name="imageKey")
    thumbnail_key = UnicodeAttribute(null=True, attr_name="thumbnailKey")
    display_key = UnicodeAttribute(null=True, attr_name="displayKey")  # 1024 px WebP (absent on older avatars)
    crop = CropMap(null=True)  # the thumbnail's square; absent: the centre
    # Bumped by every crop change; the thumbnail made for version n is thumbs/…-c{n}.jpg (chalicelib.avatars.crops).
    crop_version = NumberAttribute(null=True, attr_name="cropVersion")
    width = NumberAttribute(null=True)
    height = NumberAttribute(null=True)
    format = UnicodeAttribute(null=True)
    size_bytes = NumberAttribute(null=True, attr_name="bytes")

    prompt = UnicodeAttribute(null=True)
    seed = NumberAttribute(null=True)
    generation_id = UnicodeAttribute(null=True, attr_name="generationId")
    preset_id = UnicodeAttribute(null=True, attr_name="presetId")
    source_avatar_id = UnicodeAttribute(null=True, attr_name="sourceAvatarId")  # restyled from (issue 19)
    # Issue 29, lineage: an avatar made from another (restyle, variation) is in its source's GSI2
    # partition `U#{uid}#A#{sourceId}#D` / `A#{aid}` (sparse: only derived avatars), so the source lists
    # its newest derivatives with one Query.
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_source = GSI2()
    # Issue 29, version history: the number of the newest version (absent: never edited). Every change
    # of name, persona, attributes or crop sets it to n + 1, conditional on n, in the transaction that
    # puts version n + 1 (chalicelib/avatars/versions.py).
    version_count = NumberAttribute(null=True, attr_name="versionCount")

    usage_count = NumberAttribute(default=0, attr_name="usageCount")
    last_used_at = UnicodeAttribute(null=True, attr_name="lastUsedAt")
    created_at = UnicodeAttribute(attr_name="createdAt")
    updated_at = UnicodeAttribute(attr_name="updatedAt")
    # Issue 30 (chalicelib/avatars/suggestions.py): attribute → {value, score} suggested from an upload,
    # apart from the user's own `attributes`; status pending | ready | unavailable (absent: not asked);
    # the person attributes (gender, ageRange) the user asked to be suggested on that upload.
    suggestions = MapAttribute(null=True)
    suggestion_status = UnicodeAttribute(null=True, attr_name="suggestionStatus")
    suggest_asked = ListAttribute(of=UnicodeAttribute, null=True, attr_name="suggestAsked")
    # DynamoDB TTL (epoch seconds): set only while `uploading`, so an upload that never arrives expires.
    ttl = NumberAttribute(null=True)
    sweep_pk = UnicodeAttribute(null=True, attr_name="GSI3PK")
    sweep_sk = UnicodeAttribute(null=True, attr_name="GSI3SK")
    by_deadline = SweepIndex()


class GenerationModel(_Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default=META)
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(attr_name="GSI1SK")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_project = GSI1()
    active_by_project = GSI2()

    id = UnicodeAttribute()
    user_id = UnicodeAttribute(attr_name="userId")
    project_id = UnicodeAttribute(attr_name="projectId")
    status = UnicodeAttribute()  # pending | processing | completed | failed | cancelled
    progress = NumberAttribute(default=0)
    stage = UnicodeAttribute(null=True)  # queued | generating | done
    attempts = NumberAttribute(default=0)
    error_message = UnicodeAttribute(null=True, attr_name="errorMessage")
    request = MapAttribute(null=True)  # the validated request (prompt, name, persona, attributes, size, seed)
    prompt = UnicodeAttribute(null=True)
    negative_prompt = UnicodeAttribute(null=True, attr_name="negativePrompt")
    avatar_id = UnicodeAttribute(null=True, attr_name="avatarId")
    idempotency_key = UnicodeAttribute(null=True, attr_name="idempotencyKey")
    # The run that owns the job: only it may move the job on, until `lease_until` (epoch seconds).
    claim_token = UnicodeAttribute(null=True, attr_name="claimToken")
    lease_until = NumberAttribute(null=True, attr_name="leaseUntil")
    deadline = UnicodeAttribute(null=True)  # ISO; the sweeper fails an active job past it
    sweep_pk = UnicodeAttribute(null=True, attr_name="GSI3PK")
    sweep_sk = UnicodeAttribute(null=True, attr_name="GSI3SK")
    by_deadline = SweepIndex()
    provider = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(attr_name="createdAt")
    updated_at = UnicodeAttribute(attr_name="updatedAt")
    started_at = UnicodeAttribute(null=True, attr_name="startedAt")
    completed_at = UnicodeAttribute(null=True, attr_name="completedAt")
    # Set by the DLQ handler: the job's message reached the dead-letter queue.
    dead_lettered_at = UnicodeAttribute(null=True, attr_name="deadLetteredAt")
    # Issue 19: several images per job, a stable error code, the output safety check, timings.
    avatar_ids = ListAttribute(null=True, attr_name="avatarIds")  # the avatars made, in image order
    images_made = NumberAttribute(null=True, attr_name="imagesMade")
    images_failed = NumberAttribute(null=True, attr_name="imagesFailed")
    failures = ListAttribute(null=True)  # [{index, code, message}] of the images not made
    error_code = UnicodeAttribute(null=True, attr_name="errorCode")
    safety = UnicodeAttribute(null=True)  # checked | unchecked
    model = UnicodeAttribute(null=True)  # which model made the images
    queued_at = UnicodeAttribute(null=True, attr_name="queuedAt")  # last (re)queued by the user
    provider_ms = NumberAttribute(null=True, attr_name="providerMs")
    # Issue 25: one slot per image ({state: todo|done|failed, avatarId, code, message, tries}), written
    # by the owning run as each image ends; the day the images were charged to; a run that ran out of
    # time handed the job on (the next claim is its continuation, not a new attempt).
    slots = ListAttribute(null=True)
    quota_day = UnicodeAttribute(null=True, attr_name="quotaDay")
    handed_on = BooleanAttribute(null=True, attr_name="handedOn")
    # Issue 30: the member of a shared project who started (or last retried) the job, when not the home
    # user: their daily quota and active-job count carry it (absent: the home user, `userId`).
    started_by = UnicodeAttribute(null=True, attr_name="startedBy")


class UserStatsModel(_Model):
    """Per-user counters, all maintained with atomic ADD so /stats is one read."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default=STATS)
    total_projects = NumberAttribute(default=0, attr_name="totalProjects")
    total_avatars = NumberAttribute(default=0, attr_name="totalAvatars")
    avatars_uploaded = NumberAttribute(default=0, attr_name="avatarsUploaded")
    avatars_generated = NumberAttribute(default=0, attr_name="avatarsGenerated")
    avatars_preset = NumberAttribute(default=0, attr_name="avatarsPreset")
    total_usage = NumberAttribute(default=0, attr_name="totalUsage")
    active_generations = NumberAttribute(default=0, attr_name="activeGenerations")


class UserDayModel(_Model):
    """Per-user counters for one UTC day: recent uploads (7-day window) and the daily generation quota."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")  # DAY#yyyy-mm-dd
    uploads = NumberAttribute(default=0)
    generations = NumberAttribute(default=0)
    ttl = NumberAttribute(null=True)


class IdempotencyKeyModel(_Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")  # IDEM#{key}
    generation_id = UnicodeAttribute(attr_name="generationId")
    request_hash = UnicodeAttribute(attr_name="requestHash")
    created_at = UnicodeAttribute(attr_name="createdAt")
    ttl = NumberAttribute(null=True)


class TombstoneModel(_Model):
    """Marks a deleted project whose contents are still being removed by the cleanup worker."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")  # DELETING#{pid}
    project_id = UnicodeAttribute(attr_name="projectId")
    created_at = UnicodeAttribute(attr_name="createdAt")
    sweep_pk = UnicodeAttribute(null=True, attr_name="GSI3PK")
    sweep_sk = UnicodeAttribute(null=True, attr_name="GSI3SK")
    by_deadline = SweepIndex()
    # The purge's one chain: only the message carrying this step may run the next one.
    step = NumberAttribute(null=True)


class UsageRecordModel(_Model):
    """One usage event in an avatar's history."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")  # USE#{occurredAt}#{eventId}
    event_id = UnicodeAttribute(attr_name="eventId")
    avatar_id = UnicodeAttribute(attr_name="avatarId")
    app_id = UnicodeAttribute(attr_name="appId")
    app_name = UnicodeAttribute(attr_name="appName")
    action = UnicodeAttribute()
    reference_id = UnicodeAttribute(null=True, attr_name="referenceId")
    reference_type = UnicodeAttribute(null=True, attr_name="referenceType")
    metadata = MapAttribute(null=True)
    occurred_at = UnicodeAttribute(attr_name="occurredAt")
    recorded_at = UnicodeAttribute(attr_name="recordedAt")


class AppUsageSummaryModel(_Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")  # APP#{appId}
    app_id = UnicodeAttribute(attr_name="appId")
    app_name = UnicodeAttribute(attr_name="appName")
    count = NumberAttribute(default=0)
    last_used_at = UnicodeAttribute(null=True, attr_name="lastUsedAt")


class UsageEventMarkerModel(_Model):
    """Exists once per (user, eventId): the conditional put that makes a redelivery a no-op."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default="EVT")
    avatar_id = UnicodeAttribute(attr_name="avatarId")
    recorded_at = UnicodeAttribute(attr_name="recordedAt")
    ttl = NumberAttribute(null=True)  # markers outlive any redelivery or re-send window, then expire


class PresetModel(_Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK", default=PRESET_PK)
    sk = UnicodeAttribute(range_key=True, attr_name="SK")  # {category}#{id}
    id = UnicodeAttribute()
    category = UnicodeAttribute()
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    prompt = UnicodeAttribute()
    persona = PersonaMap(null=True)
    attributes = AttributesMap(null=True)
    preview_key = UnicodeAttribute(null=True, attr_name="previewKey")
    thumbnail_key = UnicodeAttribute(null=True, attr_name="thumbnailKey")
    popularity = NumberAttribute(default=0)
    featured = BooleanAttribute(default=False)
    version = NumberAttribute(default=1)
    # Seeding compares it with the data file's entry: unchanged presets are not rewritten and
    # their previews not rendered again.
    content_hash = UnicodeAttribute(null=True, attr_name="contentHash")
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK", default=PRESET_BY_ID)
    gsi1sk = UnicodeAttribute(attr_name="GSI1SK")  # {id}
    by_id = GSI1()


class PersonaExampleModel(_Model):
    """A persona to start from (shared, read-only); `uses` counts how often users picked it."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK", default=PERSONA_PK)
    sk = UnicodeAttribute(range_key=True, attr_name="SK")  # {category}#{id}
    id = UnicodeAttribute()
    category = UnicodeAttribute()
    persona = PersonaMap()
    uses = NumberAttribute(default=0)
    version = NumberAttribute(default=1)
    content_hash = UnicodeAttribute(null=True, attr_name="contentHash")
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK", default=PERSONA_BY_ID)
    gsi1sk = UnicodeAttribute(attr_name="GSI1SK")  # {id}
    by_id = GSI1()


class RateWindowModel(_Model):
    """How many requests of one kind a user made in one second (PK `rate_window_pk(...)`, SK `W`, TTL).

    Until issue 32 these were `U#{uid}` / `RATE#{kind}#{second}`; those items expire within two minutes
    by TTL, so no migration is needed."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default="W")
    count = NumberAttribute(default=0)
    ttl = NumberAttribute(null=True)


FILE_INTENT_SHARDS = 16


def file_intent_pk(key: str) -> str:
    return f"FILE#{key}"


def file_intent_shard(key: str) -> str:
    """GSI3 partition of a file intent: 16 shards, apart from the SWEEP# ones, so ~1.2M new files a day
    (1M users) never heat one index partition and the overdue-work query never reads them."""
    import zlib

    return f"FILES#{zlib.crc32(key.encode()) % FILE_INTENT_SHARDS}"


class FileIntentModel(_Model):
    """Written before a derived file is put to S3; the sweeper, once `check at` has passed, removes the
    file unless its avatar points at it, then this item. So stray files are found in time proportional
    to the files written, never to the bucket's size (chalicelib/avatars/file_intents.py)."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default="INTENT")
    key = UnicodeAttribute()
    sweep_pk = UnicodeAttribute(attr_name="GSI3PK")
    sweep_sk = UnicodeAttribute(attr_name="GSI3SK")
    by_deadline = SweepIndex()
    # A backstop only (weeks after the check): the sweeper deletes intents itself once checked.
    ttl = NumberAttribute(null=True)


class SweeperStateModel(_Model):
    """Where the sweeper's walk over the bucket's files stopped (PK `SWEEPER`, SK `FILES`)."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK", default="SWEEPER")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default="FILES")
    after = UnicodeAttribute(null=True)  # the last key looked at
    updated_at = UnicodeAttribute(null=True, attr_name="updatedAt")


class WebhookModel(_Model):
    """An endpoint of a user that receives signed events (chalicelib/events/webhooks.py)."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")  # WH#{wid}
    id = UnicodeAttribute()
    user_id = UnicodeAttribute(attr_name="userId")
    url = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    events = ListAttribute(of=UnicodeAttribute)
    enabled = BooleanAttribute(default=True)
    disabled_reason = UnicodeAttribute(null=True, attr_name="disabledReason")
    secret = UnicodeAttribute()
    # For 24 h after a rotation deliveries are signed with both keys.
    previous_secret = UnicodeAttribute(null=True, attr_name="previousSecret")
    previous_secret_expires = NumberAttribute(null=True, attr_name="previousSecretExpires")
    failing_since = UnicodeAttribute(null=True, attr_name="failingSince")
    # Set while a delivery is taking longer than webhook_delivery.SLOW_MS (before it even ends).
    slow_since = UnicodeAttribute(null=True, attr_name="slowSince")
    last_delivery = MapAttribute(null=True, attr_name="lastDelivery")
    created_at = UnicodeAttribute(attr_name="createdAt")
    updated_at = UnicodeAttribute(attr_name="updatedAt")


class WebhookCountModel(_Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default="WEBHOOKS")
    count = NumberAttribute(default=0)


class WebhookDeliveryModel(_Model):
    """One delivery attempt (SK D#…) or the marker that an event reached the endpoint (SK E#{eid})."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    event_id = UnicodeAttribute(attr_name="eventId")
    type = UnicodeAttribute(null=True)
    attempt = NumberAttribute(null=True)
    status = UnicodeAttribute(null=True)  # delivered | retrying | failed
    status_code = NumberAttribute(null=True, attr_name="statusCode")
    error = UnicodeAttribute(null=True)
    # Stable code of a failed attempt: timeout, connection_failed, tls_error, http_status, url_blocked…
    error_code = UnicodeAttribute(null=True, attr_name="errorCode")
    duration_ms = NumberAttribute(null=True, attr_name="durationMs")
    at = UnicodeAttribute(null=True)
    ttl = NumberAttribute(null=True)


class WebhookSecretModel(_Model):
    """A secret a rotation handed out (PK webhook items, SK `SECRET#{epoch}#{random}`): it signs until
    `expires` whatever other rotations did meanwhile (chalicelib/events/webhooks.py rotate_secret)."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    secret = UnicodeAttribute()
    expires = NumberAttribute()
    ttl = NumberAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (
    ProjectModel, AvatarModel, GenerationModel, UserStatsModel, UserDayModel,
    IdempotencyKeyModel, TombstoneModel, UsageRecordModel, AppUsageSummaryModel,
    UsageEventMarkerModel, PresetModel, PersonaExampleModel, SweeperStateModel, RateWindowModel, FileIntentModel,
    WebhookModel, WebhookCountModel, WebhookDeliveryModel, WebhookSecretModel,
)


class SharedConnection(Connection):
    """A model's Connection (its table's key schema and indexes) making its calls on the one
    DynamoDB client of the container (chalicelib.aws.session)."""

    @property
    def client(self) -> Any:
        return session.dynamodb().client


# ---- share links (issue 29, chalicelib/sharing) ---------------------------------------------

def share_pk(user_id: str, share_id: str) -> str:
    return f"U#{user_id}#S#{share_id}"


def avatar_shares_pk(user_id: str, avatar_id: str) -> str:
    """GSI1 partition holding an avatar's share links (S#{sid}, newest last by id)."""
    return f"U#{user_id}#A#{avatar_id}#S"


def share_token_pk(token_hash: str) -> str:
    return f"SHARE#{token_hash}"


class ShareModel(_Model):
    """A link that shows one avatar to anyone holding its token, until it expires or is revoked."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default=META)
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(attr_name="GSI1SK")
    by_avatar = GSI1()

    id = UnicodeAttribute()
    user_id = UnicodeAttribute(attr_name="userId")
    avatar_id = UnicodeAttribute(attr_name="avatarId")
    project_id = UnicodeAttribute(attr_name="projectId")
    label = UnicodeAttribute(null=True)
    fields = ListAttribute(of=UnicodeAttribute)  # what the page shows beyond the name and image
    token_hash = UnicodeAttribute(attr_name="tokenHash")  # SHA-256 hex of the token
    token_hint = UnicodeAttribute(attr_name="tokenHint")  # the token's last 4 characters
    created_at = UnicodeAttribute(attr_name="createdAt")
    updated_at = UnicodeAttribute(attr_name="updatedAt")
    expires_at = UnicodeAttribute(attr_name="expiresAt")
    revoked_at = UnicodeAttribute(null=True, attr_name="revokedAt")
    revoked_reason = UnicodeAttribute(null=True, attr_name="revokedReason")  # owner | avatar_deleted
    ttl = NumberAttribute(null=True)  # some weeks after it expired or was revoked


class ShareTokenModel(_Model):
    """`SHARE#{sha256(token)}` / `T`: how a public view finds its share with one GetItem. Immutable."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default="T")
    user_id = UnicodeAttribute(attr_name="userId")
    share_id = UnicodeAttribute(attr_name="shareId")
    ttl = NumberAttribute(null=True)


ALL_MODELS += (ShareModel, ShareTokenModel)


# ---- issue 29: exports ----------------------------------------------------------------------

EXPORT_SK = "EXPORT"


def export_pk(user_id: str, export_id: str) -> str:
    return f"U#{user_id}#X#{export_id}"


class ExportModel(_Model):
    """A zip of avatars being written to S3 in steps (chalicelib/exports): PK `U#{uid}#X#{xid}`, SK
    `EXPORT`; in the sweep index (GSI3) until it ends (the stall deadline) and again until it
    expires (its files are removed then)."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default=EXPORT_SK)
    id = UnicodeAttribute()
    user_id = UnicodeAttribute(attr_name="userId")
    scope = UnicodeAttribute()  # avatar | project
    target_id = UnicodeAttribute(attr_name="targetId")
    # Issue 30: whose partition the target lives in, when a member of a shared project exported it (the
    # export itself, its limit and its zip stay with the member who asked). Absent: the user's own.
    home = UnicodeAttribute(null=True, attr_name="homeUserId")
    status = UnicodeAttribute()  # pending | running | completed | failed | expired
    total = NumberAttribute(default=0)
    done = NumberAttribute(default=0)
    # The chain of steps: only the message carrying `step` may run the next one, and only the run
    # holding `claimToken` (until `leaseUntil`, epoch seconds) may write.
    step = NumberAttribute(default=0)
    claim_token = UnicodeAttribute(null=True, attr_name="claimToken")
    lease_until = NumberAttribute(null=True, attr_name="leaseUntil")
    cursor = UnicodeAttribute(null=True)  # the last avatar written (a project's avatars, newest first)
    upload_id = UnicodeAttribute(null=True, attr_name="uploadId")
    parts = ListAttribute(null=True)  # [{"n": part number, "etag": ETag}] uploaded and committed
    bytes_written = NumberAttribute(null=True, attr_name="bytesWritten")
    checkpoint = UnicodeAttribute(null=True)  # S3 key of the zip's state after the last step (the unsent tail)
    key = UnicodeAttribute(null=True)  # the zip's S3 key
    size = NumberAttribute(null=True)
    resends = NumberAttribute(null=True)  # steps the sweeper sent again after a stall
    error_code = UnicodeAttribute(null=True, attr_name="errorCode")
    error_message = UnicodeAttribute(null=True, attr_name="errorMessage")
    created_at = UnicodeAttribute(attr_name="createdAt")
    updated_at = UnicodeAttribute(attr_name="updatedAt")
    completed_at = UnicodeAttribute(null=True, attr_name="completedAt")
    expires_at = UnicodeAttribute(attr_name="expiresAt")
    sweep_pk = UnicodeAttribute(null=True, attr_name="GSI3PK")
    sweep_sk = UnicodeAttribute(null=True, attr_name="GSI3SK")
    by_deadline = SweepIndex()
    ttl = NumberAttribute(null=True)  # the item itself goes some weeks after it expired
    # Issue 29, "no export outlives its avatar": the exports of one target (GSI1 `{avatar or project
    # items PK}#X` / `X#{xid}`), so deleting the avatar (or project) cuts them short. Absent on exports
    # made before: those end at their own expiry.
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    by_target = GSI1()


class ExportDayModel(_Model):
    """Exports a user started in one UTC day (PK `U#{uid}`, SK `EXPORTS#{yyyy-mm-dd}`, TTL): the daily
    limit, charged in the transaction that creates the export."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    count = NumberAttribute(default=0)
    ttl = NumberAttribute(null=True)


ALL_MODELS = ALL_MODELS + (ExportModel, ExportDayModel)


# ---- issue 29: compare (per-avatar daily usage) ------------------------------------------------

AVATAR_DAY_TTL_DAYS = 400  # a year back and a margin: compare reads at most 90 days


def avatar_days_pk(user_id: str, avatar_id: str) -> str:
    """An avatar's daily usage counters: a partition of their own (not the avatar's META/APP# one), so a
    window is one Query and the delete path removes them with the history."""
    return f"{avatar_pk(user_id, avatar_id)}#D"


def avatar_day_sk(day: str, app_id: str) -> str:
    """`{yyyy-mm-dd}#{appId}`: a window of days is one SK range, every app of a day side by side."""
    return f"{day}#{app_id}"


class AvatarDayUsageModel(_Model):
    """Uses of one avatar by one app in one UTC day (the events' `occurredAt` day): PK
    `U#{uid}#A#{aid}#D`, SK `{yyyy-mm-dd}#{appId}`, ADDed in the usage recording transaction; TTL
    AVATAR_DAY_TTL_DAYS after the day."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    app_id = UnicodeAttribute(attr_name="appId")
    app_name = UnicodeAttribute(null=True, attr_name="appName")
    day = UnicodeAttribute()
    uses = NumberAttribute(default=0)
    ttl = NumberAttribute(null=True)


ALL_MODELS = ALL_MODELS + (AvatarDayUsageModel,)


# ---- issue 29: version history and lineage (chalicelib/avatars/versions.py) -----------------

VERSION_PREFIX = "V#"


def version_sk(number: int) -> str:
    """Zero-padded, so the avatar partition's V# items sort by number (newest first = descending)."""
    return f"{VERSION_PREFIX}{number:08d}"


def derivatives_pk(user_id: str, source_avatar_id: str) -> str:
    """GSI2 partition of the avatars made from one avatar (restyles, variations)."""
    return f"U#{user_id}#A#{source_avatar_id}#D"


class AvatarVersionModel(_Model):
    """One change of an avatar's name, persona, attributes or crop: PK the avatar's (`U#{uid}#A#{aid}`),
    SK `V#{n:08d}`. Written in the transaction of the change; immutable; deleted with the avatar's
    other partition items, or when it falls out of the newest 100."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    avatar_id = UnicodeAttribute(attr_name="avatarId")
    number = NumberAttribute()
    at = UnicodeAttribute()
    by = UnicodeAttribute()  # the user who made the change
    cause = UnicodeAttribute()  # edit | suggestion_accept | restore
    route = UnicodeAttribute()  # the API route it came through, e.g. "PUT /avatars/{avatar_id}"
    restored_from = NumberAttribute(null=True, attr_name="restoredFrom")
    # JSON text: {field: {"before": …, "after": …}} of the fields that changed, and every versioned
    # field after the change (what a restore of this version sets). Text, not maps: nulls and lists
    # round-trip exactly.
    changes = UnicodeAttribute()
    state = UnicodeAttribute()


ALL_MODELS = ALL_MODELS + (AvatarVersionModel,)


# ---- issue 30: teams (chalicelib/teams; docs/data-model.md "Teams") -------------------------

def team_pk(project_id: str) -> str:
    """A project's membership partition: its HOME item and one M#{uid} per member."""
    return f"PRJ#{project_id}"


def avatar_home_pk(avatar_id: str) -> str:
    return f"AVA#{avatar_id}"


def generation_home_pk(generation_id: str) -> str:
    return f"GEN#{generation_id}"


def share_home_pk(share_id: str) -> str:
    return f"SHR#{share_id}"


def shared_with_pk(user_id: str) -> str:
    """GSI1 partition of the projects shared with a user (their memberships)."""
    return f"U#{user_id}#SHARED"


HOME = "HOME"


class ProjectHomeModel(_Model):
    """`PRJ#{pid}` / `HOME`: where a project's data lives (`home`, its creator) and its member counts:
    `memberCount` (membership items, <= 50) and `ownerCount` (owner memberships + the home user)."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default=HOME)
    home = UnicodeAttribute()
    project_id = UnicodeAttribute(attr_name="projectId")
    member_count = NumberAttribute(default=0, attr_name="memberCount")
    owner_count = NumberAttribute(default=1, attr_name="ownerCount")
    backfill = UnicodeAttribute(null=True)  # "pending" until the avatars' and generations' HOME items exist
    created_at = UnicodeAttribute(null=True, attr_name="createdAt")
    # In the sweep index while the backfill is pending: a chain that lost its message is started again.
    sweep_pk = UnicodeAttribute(null=True, attr_name="GSI3PK")
    sweep_sk = UnicodeAttribute(null=True, attr_name="GSI3SK")
    by_deadline = SweepIndex()


class MembershipModel(_Model):
    """`PRJ#{pid}` / `M#{uid}`: a member of a project and their role; GSI1 `U#{uid}#SHARED` /
    `{addedAt}#{pid}` lists the projects shared with them, newest first."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(attr_name="GSI1SK")
    by_member = GSI1()
    project_id = UnicodeAttribute(attr_name="projectId")
    user_id = UnicodeAttribute(attr_name="userId")
    home = UnicodeAttribute()
    role = UnicodeAttribute()  # viewer | editor | owner
    added_by = UnicodeAttribute(attr_name="addedBy")
    added_at = UnicodeAttribute(attr_name="addedAt")
    updated_at = UnicodeAttribute(null=True, attr_name="updatedAt")


class ItemHomeModel(_Model):
    """`AVA#{aid}` / `HOME`, `GEN#{gid}` / `HOME` and `SHR#{sid}` / `HOME`: the home user and project of
    an avatar, a generation (and who started it) or a share link, written in the transaction that
    creates it."""
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK", default=HOME)
    home = UnicodeAttribute()
    project_id = UnicodeAttribute(attr_name="projectId")
    started_by = UnicodeAttribute(null=True, attr_name="startedBy")
    ttl = NumberAttribute(null=True)  # a share link's: it goes with the link's own item


ALL_MODELS = ALL_MODELS + (ProjectHomeModel, MembershipModel, ItemHomeModel)
