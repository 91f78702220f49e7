"""Projects: a user's folders of avatars.

    service.py    create, list, read, rename, delete (a tombstone now, the purge in the background
                  through the cleanup queue, step by step)
    store.py      the projects' data access, by name: the project item (and its avatarCount, which
                  avatars move), its tombstone, and the generations a purge removes

Modules are imported by name (`from chalicelib.projects import service as projects`).
"""
