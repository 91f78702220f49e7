"""Housekeeping: whatever a crash, a lost message or a timeout left half-done ends here.

    file_intents.py   an intent record (with a TTL) before each derived file, cleared when an item
                      points at it, so stray files are found in time proportional to new files
    sweeper.py        the scheduled sweep: overdue items on the sweep index (GSI3), expired intents
"""
