"""Peak memory (and time) of exporting a project of 500 avatars (issue 29).

    .venv/bin/python bench/export_memory.py [--avatars 500] [--events 2] [--part-mib 8]

Against the local stack's emulator (ministack) in a process of its own (so the worker's memory is only the worker's): the
project's avatars are made through the domain (mark_ready, so counts are right) with realistic files —
originals of 1–2 MB of Pillow noise (JPEG, so they do not compress), a noisy WebP display copy and a
JPEG thumbnail — and a few usage events each. Then a fresh process runs the export worker's step as
Lambda would (chalicelib.exports.service.run_step) under tracemalloc, and reports the Python heap's
peak, the process's peak RSS (VmHWM) before and after, the time, the zip's size and parts. The
zip is downloaded and checked with zipfile (every CRC) and against its manifest's SHA-256 sums.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, today, write  # noqa: E402

USER = "bench-export"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(endpoint: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "STAGE": "test", "JWT_SECRET": "bench" * 8,
            "LOG_LEVEL": "WARNING"}


def noise(width: int, height: int, fmt: str, **save: object) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, fmt, **save)
    return out.getvalue()


def seed(count: int, events: int, distinct: int) -> dict:
    """The project and its avatars' files; answers what the child needs."""
    import boto3

    from chalicelib import dependencies, ids
    from chalicelib.avatars import service as avatars
    from chalicelib.projects import service as projects
    from chalicelib.usage import service as usage
    from local.provision import provision

    outputs = provision(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region="us-east-1")
    env = {"TABLE_NAME": outputs["TableName"], "UPLOAD_BUCKET": outputs["UploadBucket"],
           "EXPORT_QUEUE_URL": outputs["ExportQueueUrl"]}
    os.environ.update(env)
    dependencies.reset()
    deps = dependencies.get_deps()
    rng = random.Random(29)
    originals = [noise(rng.randint(1100, 1500), rng.randint(1100, 1500), "JPEG", quality=90) for _ in range(distinct)]
    displays = [noise(1024, 1024, "WEBP", quality=80) for _ in range(max(2, distinct // 4))]
    thumbs = [noise(300, 300, "JPEG", quality=85) for _ in range(max(2, distinct // 4))]
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    bucket = outputs["UploadBucket"]
    project_id = projects.create_project(deps.dynamodb, USER, "Bench", "").id
    total = 0
    started = time.perf_counter()
    for i in range(count):
        avatar_id = ids.new_id("ava")
        original, display, thumb = originals[i % len(originals)], displays[i % len(displays)], thumbs[i % len(thumbs)]
        keys = (f"images/{USER}/{avatar_id}.jpg", f"display/{USER}/{avatar_id}.webp", f"thumbs/{USER}/{avatar_id}.jpg")
        for key, data, kind in zip(keys, (original, display, thumb), ("image/jpeg", "image/webp", "image/jpeg")):
            s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=kind)
            total += len(data)
        avatar = avatars.new_avatar(user_id=USER, project_id=project_id, avatar_id=avatar_id, name=f"Model {i}",
                                    source_type="uploaded", status="processing",
                                    fields={"personaName": f"Persona {i}", "gender": "female"})
        avatar.save()
        avatars.mark_ready(deps.dynamodb, avatar, image_key=keys[0], thumbnail_key=keys[2], display_key=keys[1],
                           width=1024, height=1024, fmt="JPEG", size_bytes=len(original), from_statuses=("processing",))
        for n in range(events):
            usage.record_usage(deps.dynamodb, usage.build_event({
                "eventId": f"e-{i}-{n}", "userId": USER, "avatarId": avatar_id, "appId": "pose-generator",
                "appName": "Pose Generator", "action": "pose.generate", "referenceId": f"=ref-{n}",
                "occurredAt": f"2026-11-{1 + n % 28:02d}T10:00:00Z"}))
    from chalicelib.exports import service as exports

    export = exports.start(deps.dynamodb, deps.sqs, deps.settings, USER, "project", project_id)
    return {"env": env, "exportId": export.id, "bytes": total, "originals": [len(o) for o in originals],
            "display": len(displays[0]), "thumb": len(thumbs[0]), "seedSeconds": time.perf_counter() - started}


def rss_kib(field: str = "VmHWM") -> int:
    """This process's peak (VmHWM) or current (VmRSS) resident set, KiB. (ru_maxrss would carry the
    parent's peak over the exec that started this process.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(export_id: str, budget: float | None) -> None:
    """The export worker's side, alone in a process: its heap peak and RSS."""
    import math
    import tracemalloc

    rss_start = rss_kib()
    from chalicelib import dependencies
    from chalicelib.exports import service as exports
    from chalicelib.exports.files import ExportFiles
    from chalicelib.exports.store import get

    deps = dependencies.get_deps()
    deps.storage.client  # noqa: B018 — the client is built before measuring, as in a warm container
    get(USER, export_id)
    rss_ready = rss_kib()
    steps, outcome = 0, "more"
    tracemalloc.start()
    started = time.perf_counter()
    step = 0
    while outcome == "more":
        begun = time.monotonic()
        left = (lambda: budget - (time.monotonic() - begun)) if budget else (lambda: math.inf)
        sent: list[int] = []
        outcome = exports.run_step(ExportFiles.of(deps.storage), deps.settings, USER, export_id, step,
                                   remaining=left, hand_on=sent.append)
        steps += 1
        step = sent[0] if sent else step
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    export = get(USER, export_id, consistent=True)
    print(json.dumps({"outcome": outcome, "steps": steps, "seconds": seconds, "tracemallocPeak": peak,
                      "rssStartKiB": rss_start, "rssReadyKiB": rss_ready,
                      "rssPeakKiB": rss_kib(),
                      "zipBytes": int(export.size or 0), "done": int(export.done or 0)}))


def verify(export_id: str) -> dict:
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    key = f"exports/{USER}/{export_id}.zip"
    head = s3.head_object(Bucket=os.environ["UPLOAD_BUCKET"], Key=key)
    with tempfile.TemporaryFile() as f:
        s3.download_fileobj(os.environ["UPLOAD_BUCKET"], key, f)
        f.seek(0)
        archive = zipfile.ZipFile(f)
        assert archive.testzip() is None
        manifest = json.loads(archive.read("manifest.json"))
        for entry in manifest["files"][:: max(1, len(manifest["files"]) // 200)]:  # a sample of 200 sums
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"], entry["path"]
        return {"entries": len(archive.infolist()), "avatars": len(manifest["avatars"]),
                "parts": head["ETag"].strip('"').rsplit("-", 1)[-1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--avatars", type=int, default=500)
    parser.add_argument("--events", type=int, default=2)
    parser.add_argument("--distinct", type=int, default=12, help="distinct noise originals (reused across avatars)")
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--budget", type=float, default=None, help="seconds per step (hand on when short)")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.budget)
        return
    from local.ministack import Ministack

    data = tempfile.mkdtemp(prefix="bench-export-")
    server = Ministack(data, port=free_port(), log_level="WARNING").start(timeout=60)
    endpoint = server.endpoint_url
    try:
        os.environ.update(environment(endpoint))
        os.environ["EXPORT_PART_BYTES"] = str(args.part_mib * 1024 * 1024)
        print(f"seeding {args.avatars} avatars…", flush=True)
        seeded = seed(args.avatars, args.events, args.distinct)
        print(f"seeded in {seeded['seedSeconds']:.0f} s; exporting…", flush=True)
        env = {**os.environ, **seeded["env"]}
        cmd = [sys.executable, __file__, "--child", seeded["exportId"]]
        if args.budget:
            cmd += ["--budget", str(args.budget)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        if done.returncode:
            raise SystemExit(done.stderr[-4000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        checked = verify(seeded["exportId"])
    finally:
        server.stop()
        import shutil

        shutil.rmtree(data, ignore_errors=True)
    mib = 1024 * 1024
    lines = [
        f"# Export memory ({today()})", "",
        f"Machine: {machine()}. The local stack's emulator (ministack, S3 on disk) in its own process; the export in "
        "a fresh process.", "",
        f"- project: {args.avatars} avatars; originals {min(seeded['originals']) / mib:.2f}–"
        f"{max(seeded['originals']) / mib:.2f} MiB (JPEG of noise), display {seeded['display'] / mib:.2f} MiB (WebP), "
        f"thumbnail {seeded['thumb'] / 1024:.0f} KiB; {args.events} usage events each; "
        f"{seeded['bytes'] / mib:.0f} MiB of files",
        f"- parts of {args.part_mib} MiB; {'budget ' + str(args.budget) + ' s per step' if args.budget else 'one step'}",
        f"- outcome **{result['outcome']}** in {result['steps']} step(s), {result['seconds']:.1f} s "
        f"({seeded['bytes'] / mib / result['seconds']:.0f} MiB/s through the emulator)",
        f"- zip: {result['zipBytes'] / mib:.0f} MiB, {checked['entries']} entries, {checked['parts']} parts, "
        f"{checked['avatars']} avatars; zipfile.testzip() clean, manifest SHA-256 sample matches",
        f"- **Python heap peak during the export (tracemalloc): {result['tracemallocPeak'] / mib:.1f} MiB**",
        f"- process RSS: {result['rssStartKiB'] / 1024:.0f} MiB at start, {result['rssReadyKiB'] / 1024:.0f} MiB "
        f"after imports and clients, **peak {result['rssPeakKiB'] / 1024:.0f} MiB**",
    ]
    write("export_memory_steps" if args.budget else "export_memory", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
