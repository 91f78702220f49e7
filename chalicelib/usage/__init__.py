"""Usage: other apps report "avatar used"; each avatar keeps a history and a per-app summary, each
user stats.

    service.py    record events exactly once (one counter write per avatar per batch), read the
                  history (sharded), the summary and the stats
    store.py      the data access of markers, history rows and per-app summaries, by name
    plain.py      usage-event.v1 read without pydantic, for the usage worker's cold start
    compare.py    2–4 avatars of a project side by side with their use per app per day (issue 29),
                  read from the per-avatar daily counters the recording transaction writes
    compare_schemas.py  pydantic models of the compare route
"""
