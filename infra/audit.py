"""`python -m infra.audit` (`make audit`) — check a stack's data against the service's invariants.

    python -m infra.audit --outputs .local-data/outputs.json          # every user of a local stack
    python -m infra.audit --stack avatar-creator-prod --user alice    # one user of a deployment
    python -m infra.audit --outputs … --repair                         # and mend what is safe to mend

What it checks, per user:
  counters     STATS (projects, avatars by source, usage, active generations), each project's
               avatarCount, each avatar's usageCount and per-app summaries, the user's per-app totals —
               each against a recount of the items it counts
  orphans      avatars and generations whose project is gone with no purge pending; usage rows,
               per-app summaries, versions and dedupe markers of avatars that are gone (all-users mode;
               for named avatar ids: `check_gone`, also their share links)
  versions     each avatar's versions are its newest min(versionCount, 100), numbered without a gap
  files        ready avatars whose image or thumbnail is missing; files under images/ and thumbs/
               that no avatar points at (older than the sweeper's grace period); files under
               exports/{uid}/ whose export record is gone or expired
  stuck work   generations, uploads, deletes and purges past their deadline
  teams        (issue 30) each own project's memberCount/ownerCount against its memberships; no
               membership of the user outlives its project (a purge pending aside)

It prints one line per finding (the ids and what is wrong) and exits 1 if there is any, else 0.
`--repair` sets counters to their recount, removes orphaned items and files, and runs the sweeper's
own steps for stuck work; it never touches what a user can see as their own content.

It reads with Query per user (Scan, paginated, to find every user): an operator's tool, never on a
request path. The same checks serve the invariant tests (tests/functional/test_invariants.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Finding:
    user_id: str
    kind: str  # counter | orphan | file | stuck | version
    subject: str  # what is wrong, with its ids
    repair: Any = None  # a callable that mends it, when that is safe

    def __str__(self) -> str:
        return f"{self.user_id}\t{self.kind}\t{self.subject}"


@dataclass
class UserData:
    user_id: str
    stats: Any = None
    projects: dict = field(default_factory=dict)  # pid -> ProjectModel
    tombstones: dict = field(default_factory=dict)  # pid -> TombstoneModel
    app_totals: dict = field(default_factory=dict)  # appId -> AppUsageSummaryModel (APPUSE#)
    avatars: list = field(default_factory=list)
    generations: list = field(default_factory=list)
    teams: dict = field(default_factory=dict)  # own pid -> (HOME item or None, [memberships])
    memberships: list = field(default_factory=list)  # the user's memberships of others' projects
    live_homes: set = field(default_factory=set)  # (home, pid) of those that exist or are being purged
    usage_rows: dict = field(default_factory=lambda: defaultdict(int))  # avatar id -> USE# rows
    app_rows: dict = field(default_factory=dict)  # avatar id -> {appId: count}
    versions: dict = field(default_factory=lambda: defaultdict(list))  # avatar id -> version numbers (V#)


# ---- reading ------------------------------------------------------------------------------------

def _all(query: Any) -> list:
    return list(query)


def load_user(user_id: str) -> UserData:
    """Everything the checks need for one user: Queries on the user's partition, each project's
    items (GSI1) and each avatar's partition."""
    from chalicelib.aws.models import (
        STATS,
        AppUsageSummaryModel,
        AvatarModel,
        GenerationModel,
        ProjectModel,
        TombstoneModel,
        UserStatsModel,
        avatar_pk,
        project_items_pk,
        user_pk,
    )

    data = UserData(user_id)
    pk = user_pk(user_id)
    for raw in _raw_query(pk):
        sk = raw["SK"]["S"]
        if sk == STATS:
            data.stats = UserStatsModel.from_raw_data(raw)
        elif sk.startswith("P#"):
            project = ProjectModel.from_raw_data(raw)
            data.projects[project.id] = project
        elif sk.startswith("DELETING#"):
            tombstone = TombstoneModel.from_raw_data(raw)
            data.tombstones[tombstone.project_id] = tombstone
        elif sk.startswith("APPUSE#"):
            total = AppUsageSummaryModel.from_raw_data(raw)
            data.app_totals[total.app_id] = total
    for project_id in sorted(set(data.projects) | set(data.tombstones)):
        items_pk = project_items_pk(user_id, project_id)
        data.avatars += _all(AvatarModel.by_project.query(items_pk, AvatarModel.gsi1sk.startswith("A#")))
        data.generations += _all(GenerationModel.by_project.query(items_pk, GenerationModel.gsi1sk.startswith("G#")))
    for avatar in data.avatars:
        rows: dict[str, int] = {}
        from chalicelib.aws.models import history_pks

        for raw in (r for part in history_pks(user_id, avatar.id) for r in _raw_query(part)):
            sk = raw["SK"]["S"]
            if sk.startswith("USE#"):
                data.usage_rows[avatar.id] += 1
            elif sk.startswith("V#"):
                data.versions[avatar.id].append(int(sk[2:]))
            elif sk.startswith("APP#"):
                summary = AppUsageSummaryModel.from_raw_data(raw)
                rows[summary.app_id] = int(summary.count or 0)
        data.app_rows[avatar.id] = rows
    from chalicelib.aws.models import MembershipModel, ProjectHomeModel, TombstoneModel as Tomb, project_sk, shared_with_pk, team_pk

    for project_id in sorted(data.projects):
        home, members = None, []
        for raw in _raw_query(team_pk(project_id)):
            if raw["SK"]["S"] == "HOME":
                home = ProjectHomeModel.from_raw_data(raw)
            elif raw["SK"]["S"].startswith("M#"):
                members.append(MembershipModel.from_raw_data(raw))
        data.teams[project_id] = (home, members)
    data.memberships = _all(MembershipModel.by_member.query(shared_with_pk(user_id)))
    for member in data.memberships:
        home_pk = user_pk(member.home)
        if ProjectModel.count(home_pk, ProjectModel.sk == project_sk(member.project_id), consistent_read=True) or \
                Tomb.count(home_pk, Tomb.sk == f"DELETING#{member.project_id}", consistent_read=True):
            data.live_homes.add((member.home, member.project_id))
    return data


def _raw_query(hash_key: str) -> Iterable[dict]:
    """Every item of one partition, raw (several item types live in one partition)."""
    from chalicelib.aws.models import UserStatsModel

    connection = UserStatsModel._get_connection().connection
    table = UserStatsModel.Meta.table_name
    start = None
    while True:
        page = connection.query(table, hash_key, consistent_read=True, exclusive_start_key=start)
        yield from page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def all_user_ids() -> list[str]:
    """Every user with a STATS item (created with their first project): a paginated Scan."""
    from chalicelib.aws.models import STATS, UserStatsModel

    users = set()
    for item in UserStatsModel.scan(UserStatsModel.sk == STATS, attributes_to_get=["PK", "SK"]):
        users.add(item.pk[2:])
    return sorted(users)


# ---- checking -----------------------------------------------------------------------------------

def started_elsewhere(datas: Iterable[UserData]) -> Counter:
    """Active jobs each user started in someone else's (shared) project (issue 30): they count in the
    starter's activeGenerations, not the project home's."""
    counts: Counter = Counter()
    for data in datas:
        for g in data.generations:
            if g.status in ("pending", "processing") and (g.started_by or g.user_id) != data.user_id:
                counts[g.started_by] += 1
    return counts


def check_user(data: UserData, *, storage: Any = None, now: datetime | None = None,
               elsewhere: int | None = 0) -> list[Finding]:
    """`elsewhere`: active jobs the user started in other users' projects (started_elsewhere); None when
    unknown (one user audited alone): their activeGenerations may then exceed the recount, not fall short."""
    from chalicelib import clock
    from chalicelib.avatars.service import SOURCE_COUNTER

    now = now or clock.now()
    uid = data.user_id
    found: list[Finding] = []
    ready = [a for a in data.avatars if a.status == "ready"]
    active = [g for g in data.generations if g.status in ("pending", "processing")]
    paid_here = [g for g in active if (g.started_by or g.user_id) == uid]

    # counters
    stats = data.stats
    expected = {
        "totalProjects": len(data.projects),
        "totalAvatars": len(ready),
        "avatarsUploaded": sum(a.source_type == "uploaded" for a in ready),
        "avatarsGenerated": sum(SOURCE_COUNTER[a.source_type] == "avatars_generated" for a in ready),
        "avatarsPreset": sum(a.source_type == "preset" for a in ready),
        "totalUsage": sum(int(a.usage_count or 0) for a in ready),
        "activeGenerations": len(paid_here) + (elsewhere or 0),
    }
    if stats is not None or any(expected.values()):
        from chalicelib.aws.models import UserStatsModel

        for name, want in expected.items():
            have = int(getattr(stats, _python_name(UserStatsModel, name)) or 0) if stats is not None else 0
            if name == "activeGenerations" and elsewhere is None and have > want:
                continue  # jobs started in projects of users not audited here may account for it
            if have != want:
                found.append(Finding(uid, "counter", f"STATS.{name} is {have}, recount {want}",
                                     _set_counter(UserStatsModel, uid, "STATS", name, want)))
    by_project = Counter(a.project_id for a in ready)
    for project in data.projects.values():
        have, want = int(project.avatar_count or 0), by_project.get(project.id, 0)
        if have != want:
            from chalicelib.aws.models import ProjectModel

            found.append(Finding(uid, "counter", f"project {project.id} avatarCount is {have}, recount {want}",
                                 _set_counter(ProjectModel, uid, project.sk, "avatarCount", want)))
    app_totals: Counter = Counter()
    for avatar in data.avatars:
        rows = data.app_rows.get(avatar.id, {})
        usage = int(avatar.usage_count or 0)
        if avatar.status == "ready":
            app_totals.update(rows)
        if usage != data.usage_rows.get(avatar.id, 0) and avatar.status != "deleting":
            found.append(Finding(uid, "counter", f"avatar {avatar.id} usageCount is {usage}, "
                                                 f"history holds {data.usage_rows.get(avatar.id, 0)}"))
        if avatar.status != "deleting" and sum(rows.values()) != data.usage_rows.get(avatar.id, 0):
            found.append(Finding(uid, "counter", f"avatar {avatar.id} per-app summaries add up to "
                                                 f"{sum(rows.values())}, history holds {data.usage_rows.get(avatar.id, 0)}"))
    for app_id in sorted(set(app_totals) | set(data.app_totals)):
        have = int(data.app_totals[app_id].count or 0) if app_id in data.app_totals else 0
        want = app_totals.get(app_id, 0)
        if have != want:
            from chalicelib.aws.models import AppUsageSummaryModel

            found.append(Finding(uid, "counter", f"usage by app {app_id} is {have}, recount {want}",
                                 _set_counter(AppUsageSummaryModel, uid, f"APPUSE#{app_id}", "count", want)))

    # versions: the newest min(versionCount, KEEP), without a gap
    from chalicelib.avatars.versions import KEEP

    for avatar in data.avatars:
        if avatar.status == "deleting":
            continue
        have = sorted(data.versions.get(avatar.id, []))
        newest = int(avatar.version_count or 0)
        want = list(range(max(1, newest - KEEP + 1), newest + 1))
        if have != want:
            found.append(Finding(uid, "version", f"avatar {avatar.id} at version {newest} holds versions "
                                                 f"{_ranges(have)}, expected {_ranges(want)}"))

    # orphans: items of a project that is gone with no purge pending
    for item in data.avatars + data.generations:
        if item.project_id not in data.projects and item.project_id not in data.tombstones:
            kind = "avatar" if item in data.avatars else "generation"
            found.append(Finding(uid, "orphan", f"{kind} {item.id} of missing project {item.project_id}"))

    # teams: the HOME counts against the memberships; no membership outlives its project
    for project_id, (home, members) in data.teams.items():
        owners = 1 + sum(m.role == "owner" for m in members)
        if members and home is None:
            found.append(Finding(uid, "orphan", f"project {project_id} has members and no HOME item"))
        elif home is not None and (int(home.member_count or 0), int(home.owner_count or 1)) != (len(members), owners):
            found.append(Finding(uid, "counter", f"project {project_id} memberCount/ownerCount are "
                                                 f"{home.member_count}/{home.owner_count}, recount {len(members)}/{owners}"))
    for member in data.memberships:
        if (member.home, member.project_id) not in data.live_homes:
            found.append(Finding(uid, "orphan", f"membership of project {member.project_id} (home {member.home}) "
                                                f"outlives it"))

    # stuck work
    stamp = clock.iso(now)
    for generation in active:
        if generation.deadline and generation.deadline < stamp:
            found.append(Finding(uid, "stuck", f"generation {generation.id} {generation.status} past its "
                                               f"deadline {generation.deadline}"))
    for avatar in data.avatars:
        due = (avatar.sweep_sk or "").split("#", 1)[0]
        if avatar.status in ("uploading", "deleting") and due and due < stamp:
            found.append(Finding(uid, "stuck", f"avatar {avatar.id} {avatar.status} past its deadline {due}"))
    for tombstone in data.tombstones.values():
        if tombstone.created_at < clock.iso(now - timedelta(hours=1)):
            found.append(Finding(uid, "stuck", f"project {tombstone.project_id} deleted at "
                                               f"{tombstone.created_at} still being purged"))

    if storage is not None:
        found += check_files(data, storage, now)
        found += check_export_files(uid, storage)
    return found


def _ranges(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    return f"{numbers[0]}…{numbers[-1]} ({len(numbers)})"


def check_gone(user_id: str, avatar_ids: Iterable[str], project_ids: Iterable[str] = (), *,
               now: datetime | None = None) -> list[Finding]:
    """For avatar (and project) ids that may have been deleted: once an avatar is gone (no META, none
    `deleting`), nothing of it is left — no version, usage row or summary in its partitions, no share
    link, no export that has not expired; once a project's purge is done, none of its exports either.
    Queries per id (the harness names the ids it made; the all-users mode finds partitions by Scan)."""
    from chalicelib import clock
    from chalicelib.aws.models import META, ShareModel, TombstoneModel, avatar_pk, avatar_shares_pk, history_pks, user_pk
    from chalicelib.exports import store as export_store

    stamp = clock.iso(now or clock.now())

    def live_exports(scope: str, target: str) -> list[str]:
        return [x.id for x in export_store.of_target(user_id, scope, target)
                if x.status != "expired" and x.expires_at > stamp]

    found = []
    for project_id in project_ids:
        if any(True for _ in _raw_query_sk(user_pk(user_id), (f"P#{project_id}", f"DELETING#{project_id}"))):
            continue
        left = live_exports("project", project_id)
        if left:
            found.append(Finding(user_id, "orphan", f"project {project_id} is gone but its export(s) {left} "
                                                    f"have not expired"))
    for avatar_id in avatar_ids:
        if any(True for _ in _raw_query_sk(avatar_pk(user_id, avatar_id), (META,))):
            continue  # still there (or being deleted): one GetItem
        items = [raw["SK"]["S"] for part in history_pks(user_id, avatar_id) for raw in _raw_query(part)]
        if items:
            found.append(Finding(user_id, "orphan", f"avatar {avatar_id} is gone but {len(items)} item(s) of it "
                                                    f"remain under {avatar_pk(user_id, avatar_id)} ({sorted(items)[:3]}…)"))
        shares = list(ShareModel.by_avatar.query(avatar_shares_pk(user_id, avatar_id)))
        if shares:
            found.append(Finding(user_id, "orphan", f"avatar {avatar_id} is gone but {len(shares)} share link(s) "
                                                    f"of it remain ({shares[0].id}…)"))
        left = live_exports("avatar", avatar_id)
        if left:
            found.append(Finding(user_id, "orphan", f"avatar {avatar_id} is gone but its export(s) {left} "
                                                    f"have not expired"))
    return found


def _raw_query_sk(hash_key: str, sort_keys: tuple[str, ...]) -> Iterable[dict]:
    """The items of a partition with these exact sort keys (GetItem each, consistent)."""
    from chalicelib.aws.models import UserStatsModel

    connection = UserStatsModel._get_connection().connection
    for sk in sort_keys:
        item = connection.get_item(UserStatsModel.Meta.table_name, hash_key, sk, consistent_read=True).get("Item")
        if item:
            yield item


def check_export_files(user_id: str, storage: Any) -> list[Finding]:
    """Every file under exports/{uid}/ belongs to an export record that has not expired (the sweeper
    removes an expired export's files; a record never goes before its files)."""
    from chalicelib.aws.models import EXPORT_SK, ExportModel, export_pk

    found = []
    after = None
    keys: list[str] = []
    while True:
        page = storage.list_page(f"exports/{user_id}/", start_after=after)
        keys += [o["Key"] for o in page]
        if len(page) < 1000:
            break
        after = page[-1]["Key"]
    for key in keys:
        export_id = key.rsplit("/", 1)[-1].split(".", 1)[0]
        try:
            export = ExportModel.get(export_pk(user_id, export_id), EXPORT_SK, consistent_read=True)
        except ExportModel.DoesNotExist:
            found.append(Finding(user_id, "file", f"{key} belongs to no export"))
            continue
        if export.status == "expired":
            found.append(Finding(user_id, "file", f"{key} belongs to export {export_id}, expired"))
    return found


def _python_name(model: Any, attr_name: str) -> str:
    return next(name for name, attr in model.get_attributes().items() if attr.attr_name == attr_name)


def _set_counter(model: Any, user_id: str, sk: str, attr_name: str, value: int) -> Any:
    def repair() -> None:
        from chalicelib.aws.models import user_pk

        attr = model.get_attributes()[_python_name(model, attr_name)]
        model(user_pk(user_id), sk).update(actions=[attr.set(value)])
    return repair


def check_files(data: UserData, storage: Any, now: datetime) -> list[Finding]:
    """Ready avatars' files exist; files under the user's images/ and thumbs/ belong to an avatar."""
    from chalicelib.aws.storage import DERIVED_PREFIXES
    from chalicelib.housekeeping.sweeper import FILE_GRACE_SECONDS

    uid = data.user_id
    found = []
    present: dict[str, Any] = {}
    for prefix in DERIVED_PREFIXES:
        after = None
        while True:
            page = storage.list_page(f"{prefix}{uid}/", start_after=after)
            present.update({o["Key"]: o["LastModified"] for o in page})
            if len(page) < 1000:
                break
            after = page[-1]["Key"]
    referenced = set()
    for avatar in data.avatars:
        if avatar.status == "deleting":
            continue
        keys = [k for k in (avatar.image_key, avatar.thumbnail_key, avatar.display_key) if k]
        referenced.update(keys)
        if avatar.status == "ready":
            for key in keys:
                if key not in present:
                    found.append(Finding(uid, "file", f"avatar {avatar.id} points at missing {key}"))
    settled = now - timedelta(seconds=FILE_GRACE_SECONDS)
    for key, modified in sorted(present.items()):
        if key not in referenced and (modified < settled or data.tombstones == {} and _quiet(data)):
            found.append(Finding(uid, "file", f"{key} belongs to no avatar",
                                 (lambda k=key: storage.delete([k]))))
    return found


def _quiet(data: UserData) -> bool:
    """No job in flight and no delete under way: any unreferenced file is a leftover, whatever its age."""
    return not any(g.status in ("pending", "processing") for g in data.generations) and \
        not any(a.status in ("uploading", "deleting") for a in data.avatars)


def orphaned_partitions() -> list[Finding]:
    """All-users mode: avatar partitions with rows but no META (a Scan over avatar keys)."""
    from chalicelib.aws.models import META, UsageRecordModel, avatar_pk_of

    metas, rows = set(), defaultdict(int)
    for item in UsageRecordModel.scan(UsageRecordModel.pk.contains("#A#"), attributes_to_get=["PK", "SK"]):
        if item.sk == META:
            metas.add(item.pk)
        else:
            rows[avatar_pk_of(item.pk)] += 1  # a history shard's rows belong to its avatar
    found = []
    for pk, count in sorted(rows.items()):
        if pk not in metas:
            user = pk.split("#A#")[0][2:]
            found.append(Finding(user, "orphan", f"{count} item(s) (usage rows, summaries, versions) under {pk} "
                                                 f"whose avatar is gone"))
    return found


def audit(user_ids: list[str] | None, *, storage: Any = None, now: datetime | None = None) -> list[Finding]:
    everyone = user_ids is None
    findings: list[Finding] = []
    # Every user's data first: an active job counts with whoever started it, who may be a member of
    # another user's project (issue 30).
    datas = [load_user(user_id) for user_id in (all_user_ids() if everyone else user_ids)]
    elsewhere = started_elsewhere(datas)
    for data in datas:
        findings += check_user(data, storage=storage, now=now, elsewhere=elsewhere[data.user_id] if everyone else None)
    if everyone:
        findings += orphaned_partitions()
    return findings


def repair(findings: list[Finding], deps: Any) -> int:
    """Mend what is safe: counters, stray files, and stuck work through the sweeper's own steps."""
    from chalicelib.housekeeping.sweeper import sweep

    mended = 0
    for finding in findings:
        if finding.repair is not None:
            finding.repair()
            mended += 1
    if any(f.kind == "stuck" for f in findings):
        report = sweep(deps.dynamodb, deps.storage, deps.sqs, deps.settings, files=False)
        mended += sum(report.counts().values())
    return mended


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--outputs", help="outputs.json of a local stack")
    where.add_argument("--stack", help="CloudFormation stack name of a deployment")
    parser.add_argument("--user", action="append", help="audit only this user (repeatable); default: every user")
    parser.add_argument("--repair", action="store_true", help="mend what can be mended safely")
    args = parser.parse_args(argv)

    from infra.seed import _environment_from_outputs, _stack_outputs

    outputs = json.loads(Path(args.outputs).read_text()) if args.outputs else _stack_outputs(args.stack)
    os.environ.update(_environment_from_outputs(outputs))
    for name, key in (("CLEANUP_QUEUE_URL", "CleanupQueueUrl"),):
        if outputs.get(key):
            os.environ[name] = outputs[key]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from chalicelib.dependencies import get_deps

    deps = get_deps()
    findings = audit(args.user, storage=deps.storage)
    for finding in findings:
        print(finding)
    users = "every user" if not args.user else ", ".join(args.user)
    print(f"audit of {users}: {len(findings)} finding(s)", file=sys.stderr)
    if findings and args.repair:
        print(f"repaired {repair(findings, deps)}; run again to check", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
