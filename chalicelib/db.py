"""Small PynamoDB helpers: condition-failure detection and bounded, cursor-paged queries."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError, DeleteError


def condition_failed(exc: Exception) -> bool:
    """True when a write was refused by its ConditionExpression (read from the error code, not text)."""
    if isinstance(exc, (PutError, UpdateError, DeleteError)):
        return exc.cause_response_code == "ConditionalCheckFailedException"
    return False


def transaction_reasons(exc: TransactWriteError) -> list[str]:
    """Cancellation reason codes per transaction item ('None' for items that were fine)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [(r.code if r is not None else "None") for r in reasons]


def transaction_condition_failed(exc: Exception) -> bool:
    return isinstance(exc, TransactWriteError) and "ConditionalCheckFailed" in transaction_reasons(exc)


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
