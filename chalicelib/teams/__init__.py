"""Teams (issue 30): projects shared with members in roles viewer < editor < owner.

    service.py    the rules: add, change a role, remove, leave (the home owner stays; <= 50 members;
                  ownerCount never below one), the projects shared with me, the purge's team step and
                  the HOME backfill of projects from before teams
    access.py     the access resolver every route with a project, avatar or generation id goes through
                  when the caller's own lookup misses: HOME item → membership (consistent) → the role
    store.py      the data access, by name: PRJ#{pid}/HOME, PRJ#{pid}/M#{uid}, AVA#{aid}/HOME, GEN#{gid}/HOME

A project's data stays in its home user's partition (U#{home}…); members reach it through these items
(docs/data-model.md, "Teams"). This package comes right after `users` in the feature order: features
that create projects, avatars and generations write their HOME items through `teams.store`.
"""
