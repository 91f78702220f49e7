"""Stray derived files, found in time proportional to the files written (issue 32, item 5).

Before a worker puts a derived file (images/, thumbs/, display/), it records an intent: an item
`FILE#{key}` on a sparse GSI3 shard `FILES#{n}`, sorted by the moment it may be checked (written +
FILE_GRACE_SECONDS). The sweeper reads only the intents whose moment has passed, asks the avatars
(one BatchGet per 100) whether they point at the file, deletes the files nobody points at, then the
intents. A crash between the put and the item that would point at the file — the only way a stray
file is made — leaves the intent behind, so the file is found without walking the bucket.

Every step is idempotent: intents are plain puts of a key-derived item, a file deleted twice is
still gone, an intent deleted twice is still gone; a sweeper racing another does the same work.
Files written before intents existed are still reached by the bucket walk
(sweeper.remove_stray_files), which is kept as the migration backstop and for `make audit`.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib import clock
from chalicelib.avatars import store

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.aws.storage import Storage

# Same grace as the walk: a file younger than this may be a moment from its item being written.
FILE_GRACE_SECONDS = 3600
# Intents checked per shard and run: 16 × 500 every 5 minutes ≈ 2.3M files a day, twice what 1M
# users write (~1.2M); a backlog is read again on the next run, oldest first.
INTENTS_PER_SHARD = 500
_BACKSTOP_TTL_SECONDS = 30 * 86400


def intend(keys: list[str], now: datetime | None = None) -> None:
    """Record that these files are about to be written (one BatchWriteItem of ≤ 25)."""
    moment = now or clock.now()
    store.add_file_intents(keys, check_at=clock.iso(moment + timedelta(seconds=FILE_GRACE_SECONDS)),
                           ttl=clock.epoch(moment) + FILE_GRACE_SECONDS + _BACKSTOP_TTL_SECONDS)


def expired(now: datetime, *, limit: int = INTENTS_PER_SHARD) -> list[str]:
    """File keys whose intent may be checked now (Queries on the FILES# shards of GSI3, never a Scan)."""
    return store.due_file_intents(clock.iso(now), limit=limit)


def forget(keys: list[str]) -> None:
    """The intents of these files are checked: remove them."""
    store.delete_file_intents(keys)
