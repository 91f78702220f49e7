"""Small PynamoDB helpers: named transactions, condition-failure detection and bounded, cursor-paged queries."""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError, DeleteError
from pynamodb.transactions import TransactWrite

CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"


def condition_failed(exc: Exception) -> bool:
    """True when a write was refused by its ConditionExpression (read from the error code, not text)."""
    if isinstance(exc, (PutError, UpdateError, DeleteError)):
        return exc.cause_response_code == "ConditionalCheckFailedException"
    return False


def transaction_reasons(exc: TransactWriteError) -> list[str]:
    """Cancellation reason codes per transaction item ('None' for items that were fine)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [(r.code if r is not None else "None") for r in reasons]


# ---- named transactions ------------------------------------------------------------------------
#
# DynamoDB answers a cancelled TransactWriteItems with one reason per item, in the order the items
# were sent. PynamoDB chooses that order (condition checks, deletes, puts, updates), so a reason read
# by a hand-counted position names the wrong item as soon as a call adds one. Here every operation
# carries a name, the items actually sent are recorded from the request itself (botocore's public
# event hook, per thread), and each reason is handed back under the name of the item it belongs to.

_sent = threading.local()
_HOOK = "before-parameter-build.dynamodb.TransactWriteItems"


def _record_sent(params: dict, **_: Any) -> None:
    keys = []
    for entry in params.get("TransactItems") or []:
        (body,) = entry.values()
        item = body.get("Key") or body.get("Item") or {}
        keys.append(_key_of(item))
    _sent.keys = keys


def _key_of(item: dict) -> tuple:
    return tuple(sorted((name, next(iter(value.values()))) for name, value in item.items()
                        if name in ("PK", "SK")))


def _watch(connection: Any) -> None:
    client = connection.client
    client.meta.events.register(_HOOK, _record_sent, unique_id="avatar-creator-transaction-keys")


class TransactionCancelled(Exception):
    """A named transaction was refused: `reasons` maps each operation's name to its reason code
    (only the items that had one: ConditionalCheckFailed, TransactionConflict, …)."""

    def __init__(self, reasons: dict[str, str], cause: TransactWriteError) -> None:
        super().__init__(", ".join(f"{name}: {code}" for name, code in reasons.items()) or "cancelled")
        self.reasons = reasons
        self.cause = cause

    def failed(self, name: str) -> bool:
        """True when the named operation's condition was not met."""
        return self.reasons.get(name) == CONDITION_FAILED

    @property
    def conditions_failed(self) -> set[str]:
        return {name for name, code in self.reasons.items() if code == CONDITION_FAILED}

    @property
    def conflict(self) -> bool:
        """Only conflicts with concurrent writes: the same transaction may succeed on a retry."""
        return bool(self.reasons) and set(self.reasons.values()) == {TRANSACTION_CONFLICT}


class Transaction:
    """A TransactWrite whose operations are named:

        with Transaction(connection) as tx:
            tx.save("generation", generation, condition=...)
            tx.update("daily", day, actions=[...], condition=...)

    raises TransactionCancelled with `reasons == {"daily": "ConditionalCheckFailed"}`. Other errors
    (throttling, validation) propagate as PynamoDB's TransactWriteError.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._tx = TransactWrite(connection=connection)
        self._names: dict[tuple, str] = {}

    def _name(self, name: str, hash_key: str, range_key: str | None) -> None:
        key = _key_of({"PK": {"S": hash_key}, **({"SK": {"S": range_key}} if range_key is not None else {})})
        if name in self._names.values() or key in self._names:
            raise ValueError(f"transaction operation {name!r} is not unique")
        self._names[key] = name

    def condition_check(self, name: str, model_cls: Any, hash_key: str, range_key: str | None, *,
                        condition: Any) -> None:
        self._name(name, hash_key, range_key)
        self._tx.condition_check(model_cls, hash_key, range_key, condition=condition)

    def save(self, name: str, model: Any, *, condition: Any = None) -> None:
        self._name(name, model.pk, model.sk)
        self._tx.save(model, condition=condition)

    def update(self, name: str, model: Any, *, actions: list, condition: Any = None) -> None:
        self._name(name, model.pk, model.sk)
        self._tx.update(model, actions=actions, condition=condition)

    def delete(self, name: str, model: Any, *, condition: Any = None) -> None:
        self._name(name, model.pk, model.sk)
        self._tx.delete(model, condition=condition)

    def commit(self) -> None:
        _watch(self._connection)
        _sent.keys = None
        try:
            with self._tx:  # TransactWrite commits on a clean exit
                pass
        except TransactWriteError as exc:
            codes = transaction_reasons(exc)
            if not codes:
                raise
            sent = getattr(_sent, "keys", None) or []
            if len(sent) != len(codes):
                raise  # not a cancellation we can attribute: leave it to the caller's generic handling
            reasons = {self._names.get(key, f"#{index}"): code
                       for index, (key, code) in enumerate(zip(sent, codes)) if code not in ("None", None)}
            raise TransactionCancelled(reasons, exc) from exc

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()


def query_page(model: Any, hash_key: str, *, limit: int, start_key: dict | None = None,
               range_key_condition: Any = None, filter_condition: Any = None, index: Any = None,
               newest_first: bool = True) -> tuple[list, dict | None]:
    """Exactly one Query round trip (PynamoDB's iterator would keep paging until `limit` is met)."""
    source = index if index is not None else model
    result = source.query(hash_key, range_key_condition, filter_condition, scan_index_forward=not newest_first,
                          limit=limit, page_size=limit, last_evaluated_key=start_key)
    page = next(result.page_iter)
    return [model.from_raw_data(raw) for raw in page.get("Items", [])], page.get("LastEvaluatedKey")


def fill_page(model: Any, hash_key: str, *, limit: int, start_key: dict | None = None, max_calls: int = 3,
              **query: Any) -> tuple[list, dict | None]:
    """Collect up to `limit` items with at most `max_calls` Query round trips.

    A FilterExpression can leave a page short; a fixed number of follow-up queries keeps the
    cost of one API read bounded whatever the data size, and the cursor continues the rest.
    """
    items: list = []
    key = start_key
    for _ in range(max_calls if query.get("filter_condition") is not None else 1):
        page, key = query_page(model, hash_key, limit=limit - len(items), start_key=key, **query)
        items.extend(page)
        if key is None or len(items) >= limit:
            break
    return items, key


def iterate_all(run_query: Callable[[dict | None], Any]) -> Iterator:
    """Every item of a query, page by page (for background jobs only, never for API reads)."""
    key = None
    while True:
        result = run_query(key)
        yield from result
        key = result.last_evaluated_key
        if key is None:
            return
