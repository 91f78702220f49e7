"""Attribute suggestions on upload (issue 30): once an uploaded avatar is `ready`, a zero-shot image
classifier (ATTRIBUTE_MODEL, CLIP by default, through huggingface_hub's `InferenceClient`) suggests
**visual** attributes — hair colour and length, eye colour, glasses, facial hair, clothing style,
background, expression. Gender and age range are suggested only when the user asked for them on that
upload (`suggest: ["gender", "ageRange"]`). Nothing else is ever asked of the model: the only text it
receives is the phrases in LABELS, and none of them names ethnicity, skin tone, religion, health,
sexual orientation or any other sensitive trait (tests/unit/test_suggestion_labels.py checks every phrase).

    initial_fields(spec, settings)     what a new upload's avatar records (status `pending`, what was asked)
    request(sqs, settings, key)        after `ready`: one message on the upload queue (the image worker's)
    run(storage, settings, model, …)   the worker step: one model call → suggestions `ready` | `unavailable`
    accept(user, avatar, attributes)   accepted values become attributes, never over one the user set
    dismiss(user, avatar, attributes)  forget them (all, or the named ones)

Suggestions live on the avatar apart from its attributes (`suggestions`: attribute → {value, score};
`suggestionStatus`: pending | ready | unavailable). A model failure (429, 5xx, timeout, unreachable,
refused) ends in `unavailable` and never touches the upload, which is already `ready`. Every write is
conditional on what was read, so a redelivered message is a no-op.

One call per avatar: CLIP's zero-shot scores are a softmax over the candidate phrases, and a softmax
renormalised over a subset equals the softmax of that subset alone, so every attribute's phrases are
sent together and each attribute's scores are renormalised within its own phrases (`pick`).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

from chalicelib import clock
from chalicelib.avatars import service, store, vocabulary
from chalicelib.errors import ConflictError
from chalicelib.observability import logger

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.models import AvatarModel
    from chalicelib.aws.storage import Storage
    from chalicelib.config import Settings

SUGGEST_MESSAGE = "avatar.suggest"
VISUAL_ATTRIBUTES = tuple(vocabulary.VISUAL_VALUES)
PERSON_ATTRIBUTES = tuple(vocabulary.PERSON_VALUES)  # only when asked on that upload
SUGGESTABLE = VISUAL_ATTRIBUTES + PERSON_ATTRIBUTES
HYPOTHESIS = "a photo of {}."

# attribute → (value, phrase): the only text ever sent to the model. Each phrase describes what a
# photo shows, never who the person is; phrases are unique across attributes.
LABELS: dict[str, tuple[tuple[str, str], ...]] = {
    "hairColor": (("black", "a person with black hair"), ("brown", "a person with brown hair"),
                  ("blonde", "a person with blonde hair"), ("red", "a person with red hair"),
                  ("grey", "a person with grey hair")),
    "hairLength": (("bald", "a person with a shaved or bald head"), ("short", "a person with short hair"),
                   ("medium", "a person with shoulder-length hair"), ("long", "a person with long hair")),
    "eyeColor": (("brown", "a person with brown eyes"), ("blue", "a person with blue eyes"),
                 ("green", "a person with green eyes"), ("hazel", "a person with hazel eyes")),
    "glasses": (("none", "a person without glasses"), ("glasses", "a person wearing glasses"),
                ("sunglasses", "a person wearing sunglasses")),
    "facialHair": (("none", "a clean-shaven face"), ("stubble", "a face with stubble"),
                   ("beard", "a person with a beard"), ("mustache", "a person with a mustache")),
    "clothingStyle": (("casual", "a person in casual clothes"), ("formal", "a person in formal evening wear"),
                      ("business", "a person in business attire"), ("sporty", "a person in sportswear"),
                      ("streetwear", "a person in streetwear")),
    "background": (("plain", "a portrait on a plain background"), ("indoor", "a portrait taken indoors"),
                   ("nature", "a portrait with trees or nature behind"),
                   ("city", "a portrait with city streets behind")),
    "expression": (("smiling", "a smiling person"), ("neutral", "a person with a neutral expression"),
                   ("serious", "a person with a serious expression"), ("laughing", "a laughing person")),
    # Asked only when the user opts in on that upload.
    "gender": (("female", "a woman"), ("male", "a man")),
    "ageRange": (("teen", "a teenager"), ("young-adult", "a young adult"), ("adult", "an adult in their thirties"),
                 ("middle-aged", "a middle-aged person"), ("senior", "an elderly person")),
}


class SuggestionsUnavailableError(Exception):
    """The model could not answer (busy, down, too slow, unreachable, refused): suggestions `unavailable`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:300]


class OutOfTimeError(Exception):
    """Too little of the invocation is left for one model call: the caller hands the message on."""


# ---- labels and scores (pure) ------------------------------------------------------------------

def attributes_for(asked: Iterable[str] | None) -> tuple[str, ...]:
    """The attributes asked of the model: every visual one, plus the person attributes the user asked for."""
    extra = set(asked or ())
    return VISUAL_ATTRIBUTES + tuple(a for a in PERSON_ATTRIBUTES if a in extra)


def labels_for(attributes: Iterable[str]) -> list[str]:
    """The candidate phrases sent to the model, for these (allowed) attributes only."""
    return [phrase for attribute in attributes if attribute in LABELS for _, phrase in LABELS[attribute]]


def pick(scores: dict[str, float], attributes: Iterable[str], threshold: float) -> dict[str, dict]:
    """attribute → {value, score} for each attribute whose best phrase, renormalised among that
    attribute's phrases, scores at least `threshold`; a phrase missing from the answer scores 0."""
    found: dict[str, dict] = {}
    for attribute in attributes:
        options = [(value, max(0.0, float(scores.get(phrase, 0.0)))) for value, phrase in LABELS.get(attribute, ())]
        total = sum(score for _, score in options)
        if total <= 0:
            continue
        value, best = max(options, key=lambda option: option[1])
        share = best / total
        if share >= threshold:
            found[attribute] = {"value": value, "score": round(share, 4)}
    return found


# ---- the model -------------------------------------------------------------------------------

def enabled(settings: "Settings") -> bool:
    """Suggestions run when turned on (ATTRIBUTE_SUGGESTIONS=on) and a model can be reached: a dedicated
    endpoint, or ATTRIBUTE_MODEL with a token."""
    return settings.attribute_suggestions_on


class AttributeClassifier:
    """A zero-shot image classifier through `InferenceClient.zero_shot_image_classification`
    (huggingface_hub is imported on the first call: only the image worker loads it)."""

    def __init__(self, settings: "Settings", token: str | None) -> None:
        self._settings = settings
        self._token = token
        self._client: Any = None

    @property
    def name(self) -> str:
        return self._settings.attribute_endpoint_url or self._settings.attribute_model

    def _inference_client(self) -> Any:
        if self._client is None:
            from huggingface_hub import InferenceClient

            s = self._settings
            self._client = InferenceClient(
                model=s.attribute_endpoint_url or s.attribute_model, token=self._token,
                timeout=s.attribute_timeout_seconds,
                provider=None if s.attribute_endpoint_url else s.attribute_provider)
        return self._client

    def scores(self, image: bytes, labels: list[str]) -> dict[str, float]:
        try:
            answer = self._inference_client().zero_shot_image_classification(
                image, candidate_labels=labels, hypothesis_template=HYPOTHESIS)
        except Exception as exc:  # noqa: BLE001 — every failure of the model means "no suggestions"
            raise unavailable(exc) from exc
        try:
            return {str(item.label): float(item.score) for item in answer}
        except (TypeError, ValueError, AttributeError) as exc:
            raise SuggestionsUnavailableError("model_error", "The attribute model answered in an unknown shape") from exc


def unavailable(exc: BaseException) -> SuggestionsUnavailableError:
    """huggingface_hub / httpx exceptions → a stable code (logged; the user sees `unavailable`)."""
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

    if isinstance(exc, InferenceTimeoutError):
        return SuggestionsUnavailableError("model_timeout", "The attribute model did not answer in time")
    if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
        status = exc.response.status_code
        code = "model_rate_limited" if status == 429 else "model_unavailable" if status >= 500 else "model_refused"
        return SuggestionsUnavailableError(code, f"The attribute model answered HTTP {status}")
    import httpx2

    if isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError)):
        return SuggestionsUnavailableError("model_unreachable", "The attribute model could not be reached")
    return SuggestionsUnavailableError("model_error", f"The attribute model failed: {type(exc).__name__}")


def model_for(settings: "Settings") -> AttributeClassifier | None:
    if not enabled(settings):
        return None
    token = None
    if settings.hf_token or settings.hf_token_arn:
        from chalicelib.aws.secrets import hf_token

        token = hf_token(settings)
    return AttributeClassifier(settings, token)


# ---- asking for them -------------------------------------------------------------------------

def initial_fields(spec: dict, settings: "Settings") -> dict:
    """The new upload's avatar fields: `pending` when suggestions run here, with the person attributes
    the user asked for (nothing is recorded when they do not run)."""
    if not enabled(settings):
        return {}
    asked = [a for a in PERSON_ATTRIBUTES if a in (spec.get("suggest") or ())]
    return {"suggestion_status": "pending", **({"suggest_asked": asked} if asked else {})}


# A request handed on this many times (no invocation had time for the model) ends `unavailable`: a
# function whose timeout is below one model call must not pass the message round for ever.
MAX_HAND_ONS = 5


def message(user_id: str, avatar_id: str, hand_ons: int = 0) -> str:
    return json.dumps({"type": SUGGEST_MESSAGE, "userId": user_id, "avatarId": avatar_id,
                       **({"handOns": hand_ons} if hand_ons else {})})


def request(sqs: Any, settings: "Settings", user_id: str, avatar_id: str) -> bool:
    """After the avatar turned `ready`: one message on the upload queue. Sent again for a duplicate
    upload event (the worker drops what is no longer pending), so a crash between `ready` and this
    send is repaired by the event's redelivery. False when suggestions do not run here."""
    if not enabled(settings) or not settings.upload_queue_url:
        return False
    sqs.send_message(QueueUrl=settings.upload_queue_url, MessageBody=message(user_id, avatar_id))
    return True


def parse_message(body: str) -> tuple[str, str, int] | None:
    """(userId, avatarId, times handed on) of a suggestion message; None for any other message on the queue."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") != SUGGEST_MESSAGE:
        return None
    user_id, avatar_id = data.get("userId"), data.get("avatarId")
    if not (isinstance(user_id, str) and user_id and isinstance(avatar_id, str) and avatar_id):
        return ("", "", 0)  # ours, but it can never succeed
    hand_ons = data.get("handOns")
    return user_id, avatar_id, hand_ons if isinstance(hand_ons, int) and not isinstance(hand_ons, bool) else 0


# ---- the worker step -------------------------------------------------------------------------

# A model call may take its timeout; this much more is kept for reading the image and the write.
SPARE_SECONDS = 4.0


def run(storage: "Storage", settings: "Settings", model: AttributeClassifier | None, user_id: str, avatar_id: str,
        *, time_left_ms: int | None = None) -> str:
    """Ask the model once and record the suggestions (or `unavailable`). Safe to run twice: only a
    `pending` avatar is asked, and the write is conditional on it still being pending.

    Raises OutOfTimeError before calling the model when the invocation has too little time left."""
    log = {"avatarId": avatar_id}
    avatar = store.get(user_id, avatar_id, consistent=True)
    if avatar is None:
        return "skipped: no such avatar"
    if avatar.suggestion_status != "pending":
        return f"skipped: suggestions {avatar.suggestion_status}"
    if avatar.status != "ready":
        return f"skipped: avatar is {avatar.status}"  # deleting, or not ready yet (its ready sends again)
    if model is None:
        return _finish(avatar, "unavailable", None, log, code="not_configured")
    if time_left_ms is not None and time_left_ms < (settings.attribute_timeout_seconds + SPARE_SECONDS) * 1000:
        raise OutOfTimeError()
    key = avatar.display_key or avatar.image_key
    image = storage.get_if_exists(key, settings.upload_max_bytes) if key else None
    if image is None:
        return _finish(avatar, "unavailable", None, log, code="no_image")
    attributes = attributes_for(avatar.suggest_asked)
    try:
        scores = model.scores(image, labels_for(attributes))
    except SuggestionsUnavailableError as exc:
        return _finish(avatar, "unavailable", None, log, code=exc.code, reason=exc.reason)
    return _finish(avatar, "ready", pick(scores, attributes, settings.attribute_threshold), log)


def _finish(avatar: AvatarModel, status: str, found: dict | None, log: dict, **why: str) -> str:
    if not store.finish_suggestions(avatar, status, found):
        return "skipped: changed meanwhile"
    logger.info("attribute suggestions " + status,
                extra={**log, **why, "attributes": sorted(found or {}), "count": len(found or {})})
    return status


def dead_letter(user_id: str, avatar_id: str, code: str = "dead_lettered") -> str:
    """The suggestion message kept failing (reached the upload DLQ), or was handed on MAX_HAND_ONS
    times: suggestions end `unavailable`."""
    avatar = store.get(user_id, avatar_id, consistent=True)
    if avatar is None:
        return "skipped: no such avatar"
    if avatar.suggestion_status != "pending" or avatar.status != "ready":
        return "skipped"
    return _finish(avatar, "unavailable", None, {"avatarId": avatar_id}, code=code)


# ---- the user's answer -----------------------------------------------------------------------

_ATTEMPTS = 3


def accept(user_id: str, avatar_id: str, attributes: list[str] | None = None, *, connection: Any,
           actor: str | None = None) -> AvatarModel:
    """The suggested values (all, or those of `attributes`) become the avatar's attributes where the
    user has none; an attribute the user already set keeps their value. Accepted (and overridden)
    suggestions leave `suggestions`. Naming an attribute not suggested (any more) changes nothing.
    Attributes that change are a version of the avatar (chalicelib.avatars.versions), written in the
    same transaction; `connection` is the transaction's."""
    return _answer(user_id, avatar_id, attributes, apply=True, connection=connection, actor=actor)


def dismiss(user_id: str, avatar_id: str, attributes: list[str] | None = None) -> AvatarModel:
    """Forget the suggestions (all, or those of `attributes`); the avatar's attributes are unchanged."""
    return _answer(user_id, avatar_id, attributes, apply=False)


def _answer(user_id: str, avatar_id: str, attributes: list[str] | None, *, apply: bool,
            connection: Any = None, actor: str | None = None) -> AvatarModel:
    for _ in range(_ATTEMPTS):
        avatar = service.get_avatar(user_id, avatar_id, consistent=True)  # another user's: 404
        current = avatar.suggestions.as_dict() if avatar.suggestions is not None else {}
        chosen = [a for a in current if attributes is None or a in attributes]
        if not chosen:
            return avatar
        remaining = {a: v for a, v in current.items() if a not in chosen}
        attrs: Any = ...  # unchanged
        if apply:
            mine = service.attribute_fields(avatar)
            accepted = {a: current[a]["value"] for a in chosen if mine.get(a) in (None, "")}
            if accepted:
                # The attributes change: a version, in the same transaction, conditional on the item as read.
                return _accept_as_version(connection, user_id, avatar_id, attributes, actor)
            attrs = service.attributes_from_fields({**mine, **accepted})
        # Conditional on the item as read: an edit or another answer meanwhile → read again.
        if not store.answer_suggestions(avatar, remaining, attrs, now=clock.now_iso()):
            continue
        return avatar
    service.get_avatar(user_id, avatar_id, consistent=True)  # deleted meanwhile: 404
    raise ConflictError("The avatar changed while answering its suggestions; try again")


def _accept_as_version(connection: Any, user_id: str, avatar_id: str, attributes: list[str] | None,
                       actor: str | None) -> AvatarModel:
    from chalicelib.avatars import versions

    remaining: dict = {}

    def plan(avatar: AvatarModel) -> versions.Change | None:
        current = avatar.suggestions.as_dict() if avatar.suggestions is not None else {}
        chosen = [a for a in current if attributes is None or a in attributes]
        remaining.clear()
        remaining.update({a: v for a, v in current.items() if a not in chosen})
        mine = service.attribute_fields(avatar)
        merged = {**mine, **{a: current[a]["value"] for a in chosen if mine.get(a) in (None, "")}}
        return versions.plan_fields(avatar, merged) if chosen else None

    def write(tx: Any, avatar: AvatarModel, now: str, number: int, change: versions.Change) -> None:
        store.answer_suggestions_versioned(tx, avatar, dict(remaining), change.edits["attributes"], now=now,
                                           version=number)

    avatar, version = versions.commit(user_id, avatar_id, plan, connection=connection, actor=actor,
                                      cause=versions.SUGGESTION_ACCEPT, write=write)
    if version is not None:
        return avatar
    # The user set those attributes meanwhile: accepting leaves them, which is a dismissal.
    return _answer(user_id, avatar_id, attributes, apply=False)
