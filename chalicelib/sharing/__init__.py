"""Share links (issue 29): a public, read-only page of one avatar for anyone holding its link.

    service.py    the rules: create (token shown once, only its SHA-256 kept), list, revoke, resolve a
                  token to what a view may show (404 unknown, 410 revoked/expired/avatar gone), the
                  per-client view rate, the removal of an avatar's links when it is deleted
    store.py      the share items' data access: every read and write of a share, its token item and
                  the view rate window, by name (docs/sharing.md has the keys)
    page.py       the public page: escaped HTML, no script, its security headers
    schemas.py    pydantic models of the share routes (built on first use, never at cold start)

Below `avatars` in the feature order: deleting an avatar calls `service.remove_for_avatar`, so this
package reads avatar items through the adapters (chalicelib.aws.models), never through avatars/.
"""
