"""`python -m local.token alice` (`make token USER=alice`): a dev JWT for the local stack, signed with
JWT_SECRET (or the local stack's dev default), valid for a day."""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.token", description=__doc__)
    parser.add_argument("user", nargs="?", default="alice", help="user id (the token's sub)")
    parser.add_argument("--ttl", type=int, default=86400, help="lifetime in seconds (default 1 day)")
    args = parser.parse_args(argv)

    from chalicelib.auth import issue_token
    from local.stack import DEV_JWT_SECRET

    try:
        token = issue_token(args.user, secret=os.environ.get("JWT_SECRET") or DEV_JWT_SECRET,
                            ttl_seconds=args.ttl, issuer=os.environ.get("JWT_ISSUER") or None,
                            audience=os.environ.get("JWT_AUDIENCE") or None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
