"""Put avatars made from another before issue 29's lineage keys into their source's derivatives.

    TABLE_NAME=… [AWS_ENDPOINT_URL=…] .venv/bin/python scripts/backfill_lineage.py [--dry-run]

Restyles made before then carry `sourceAvatarId` but no GSI2 keys, so `GET /avatars/{id}` of their
source does not list them. This walks the table once (a paginated Scan, filtered to such avatars: an
operator's tool, never a request path) and sets the keys with a conditional update — safe to run
again or while the service runs (variations made before then never recorded their source: nothing
to backfill for them).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def backfill(*, dry_run: bool = False) -> int:
    from chalicelib.avatars import store
    from chalicelib.aws.models import META, AvatarModel

    done = 0
    for avatar in AvatarModel.scan((AvatarModel.sk == META) & AvatarModel.source_avatar_id.exists()
                                   & AvatarModel.gsi2pk.does_not_exist() & AvatarModel.pk.contains("#A#")):
        if dry_run or store.join_source_lineage(avatar):
            done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
    args = parser.parse_args(argv)
    print(f"{'would add' if args.dry_run else 'added'} {backfill(dry_run=args.dry_run)} avatar(s) to their source's lineage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
