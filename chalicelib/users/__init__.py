"""Users: the counters kept per user, each changed in the transaction of the change it counts.

    store.py      the user counters' data access, by name: STATS (totals, by source, usage, active
                  jobs), DAY# (uploads that UTC day) and APPUSE# (usage by app)

Every feature counts something here, so this package comes first in the feature order.
"""
