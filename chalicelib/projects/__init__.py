"""Projects: a user's folders of avatars.

    service.py    create, list, read, rename, delete (a tombstone now, the purge in the background
                  through the cleanup queue, step by step)
    store.py      the project items' data access: every read and write of a project item, by name

Modules are imported by name (`from chalicelib.projects import service as projects`).
"""
