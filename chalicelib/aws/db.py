"""Small PynamoDB helpers: named transactions, condition-failure detection and bounded, cursor-paged queries."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError

CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"
BOTOCORE_EXCEPTIONS = (BotoCoreError, ClientError)


def condition_failed(exc: Exception) -> bool:
    """True when a write was refused by its ConditionExpression (read from the error code, not text)."""
    if isinstance(exc, (PutError, UpdateError, DeleteError)):
        return exc.cause_response_code == "ConditionalCheckFailedException"
    return False


def update_if(item: Any, actions: list, condition: Any) -> bool:
    """UpdateItem with a condition: True when written, False when the condition was not met (the item
    changed or went meanwhile); any other failure propagates. Every store's conditional update."""
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def transaction_reasons(exc: TransactWriteError) -> list[str]:
    """Cancellation reason codes per transaction item ('None' for items that were fine)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [(r.code if r is not None else "None") for r in reasons]


# ---- named transactions ------------------------------------------------------------------------
#
# DynamoDB answers a cancelled TransactWriteItems with one reason per item, in the order the items
# were sent. PynamoDB's TransactWrite sends them grouped by kind (condition checks, deletes, puts,
# updates), so a reason read by a hand-counted position names the wrong item as soon as a call adds
# one. Here each operation is built with PynamoDB's public `get_*_kwargs` methods, kept in a list in
# the order it was added, under its name, and sent as that list through the connection's public
# `dispatch`: reason i belongs to operation i by construction. No botocore hook, no per-thread state.

RETRYABLE_REASONS = frozenset({TRANSACTION_CONFLICT, "ThrottlingError", "ProvisionedThroughputExceeded",
                               "RequestLimitExceeded"})


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
        """Only conflicts with concurrent writes (or throttling): the same transaction may succeed on
        a retry. The API answers these 503 with Retry-After (api/http.py)."""
        return bool(self.reasons) and set(self.reasons.values()) <= RETRYABLE_REASONS


class Transaction:
    """A TransactWriteItems whose operations are named and sent in the order they were added:

        with Transaction(connection) as tx:
            tx.save("generation", generation, condition=...)
            tx.update("daily", day, actions=[...], condition=...)

    raises TransactionCancelled with `reasons == {"daily": "ConditionalCheckFailed"}`. Other errors
    (throttling of the whole call, validation) propagate as PynamoDB's TransactWriteError.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._items: list[dict] = []
        self._names: list[str] = []

    def _add(self, name: str, kind: str, kwargs: dict) -> None:
        if name in self._names:
            raise ValueError(f"transaction operation {name!r} is not unique")
        self._names.append(name)
        self._items.append({kind: kwargs})

    def condition_check(self, name: str, model_cls: Any, hash_key: str, range_key: str | None, *,
                        condition: Any) -> None:
        if condition is None:
            raise TypeError("a condition check needs a condition")
        self._add(name, "ConditionCheck",
                  model_cls.get_operation_kwargs_from_class(hash_key, range_key=range_key, condition=condition))

    def save(self, name: str, model: Any, *, condition: Any = None) -> None:
        self._add(name, "Put", model.get_save_kwargs_from_instance(condition=condition))

    def update(self, name: str, model: Any, *, actions: list, condition: Any = None) -> None:
        self._add(name, "Update", model.get_update_kwargs_from_instance(actions=actions, condition=condition))

    def delete(self, name: str, model: Any, *, condition: Any = None) -> None:
        self._add(name, "Delete", model.get_delete_kwargs_from_instance(condition=condition))

    def commit(self) -> None:
        if not self._items:
            return
        try:
            self._connection.dispatch("TransactWriteItems", {"TransactItems": self._items})
        except BOTOCORE_EXCEPTIONS as exc:
            error = TransactWriteError("Failed to write transaction items", exc)
            codes = transaction_reasons(error)
            if not codes:
                raise error from exc
            if len(codes) != len(self._names):  # DynamoDB gives one reason per item sent; anything else is not ours to read
                raise error from exc
            reasons = {name: code for name, code in zip(self._names, codes) if code not in ("None", None)}
            raise TransactionCancelled(reasons, error) from exc

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
