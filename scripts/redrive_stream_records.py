"""Publish the table changes the stream handler parked in StreamRecordsDlq (docs/events.md).

    STREAM_RECORDS_DLQ_URL=… TABLE_NAME=… EVENT_BUS_NAME=… WEBHOOK_QUEUE_URL=… \
        .venv/bin/python scripts/redrive_stream_records.py [--max 100] [--list]

Each parked message holds the whole stream record and why it failed. Fix the cause first (read them
with --list), then redrive: records are published oldest first with the same event ids as before
(receivers dedupe), each deleted from the queue once published; it stops at the first that fails
again. A redriven change arrives after later changes of the same item: re-read the resource.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max", type=int, default=100)
    parser.add_argument("--list", action="store_true", help="show what is parked, change nothing")
    args = parser.parse_args(argv)
    from chalicelib.dependencies import get_deps
    from chalicelib.handlers.stream import redrive_parked

    if args.list:
        deps = get_deps()
        messages = deps.sqs.receive_message(QueueUrl=deps.settings.stream_records_dlq_url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=0, VisibilityTimeout=0).get("Messages", [])
        for m in messages:
            parked = json.loads(m["Body"])
            print(parked["sequenceNumber"], parked["record"].get("eventName"), parked["attempts"], parked["reason"])
        return 0
    print(f"published {redrive_parked(max_messages=args.max)} parked record(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
