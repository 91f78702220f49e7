"""Users: a user's counters — totals (STATS), per-day counts (DAY#), request rate windows.

    store.py      the counters' data access, by name
"""
