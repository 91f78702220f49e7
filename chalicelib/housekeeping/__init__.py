"""Housekeeping: whatever a crash, a lost message or a timeout left half-done ends here.

    sweeper.py    the scheduled sweep: overdue items on the sweep index (GSI3), expired file intents
                  (chalicelib/avatars/file_intents.py), the bounded walk over the bucket
    store.py      the sweeper's data access: the sweep index's overdue items and where the walk stopped
"""
