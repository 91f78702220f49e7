"""The content policy (issue 27): its scores on the labelled corpus and its cost on the generate path.

    .venv/bin/python -m bench.content_policy            # scores + timings, Markdown for BENCHMARKS.md
    .venv/bin/python -m bench.content_policy --rounds 5

- scores: recall (refused of those labelled refuse) and false refusals (refused of those labelled allow)
  on the whole corpus, the tuning part and the held-out fifth apart; precision and recall per rule and
  per language (a refusal counts for a rule only if it names that rule);
- load: a fresh interpreter imports the module and loads the rules and the Unicode data (regex,
  confusable_homoglyphs) — once per container, on the first generation request, never at cold start;
- check: every corpus prompt checked alone (as the request {"prompt": …, plus its other fields}),
  timed one by one: median and p99 over the prompts of each one's best round (its own cost), and over
  every timing (which includes the noise of a shared machine); and the largest request the API accepts.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def load_ms(rounds: int = 11) -> list[float]:
    code = ("import json, re, dataclasses, unicodedata, pathlib, time; t=time.perf_counter();"
            "from chalicelib import content_policy; content_policy.load(); print((time.perf_counter()-t)*1000)")
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(rounds)]


def check_us(rows: list[dict], rounds: int) -> list[list[float]]:
    """Per prompt, its check times over the rounds (µs)."""
    from chalicelib.generation import content_policy
    from tests.unit.test_policy_corpus import request_of

    requests = [request_of(row) for row in rows]
    content_policy.load()
    for request in requests:  # warm
        content_policy.check(request)
    times: list[list[float]] = [[] for _ in requests]
    for _ in range(rounds):
        for i, request in enumerate(requests):
            started = time.perf_counter_ns()
            content_policy.check(request)
            times[i].append((time.perf_counter_ns() - started) / 1000)
    return times


def largest_request_ms(rounds: int) -> list[float]:
    """A request at every field's maximum length (prompt 600, background 1000, 10 traits …), plain words."""
    from chalicelib.generation import content_policy

    words = "a confident woman with long hair in a park at sunset wearing a blue dress and smiling warmly".split()

    def text(n: int) -> str:
        return " ".join(words[i % len(words)] for i in range(n))[:n]

    request = {"prompt": text(600), "personaBackground": text(1000), "personaPersonality": [text(40)] * 10,
               "name": text(100), "personaName": text(100),
               **{k: text(64) for k in ("gender", "ageRange", "ethnicity", "bodyType", "hairStyle", "hairColor",
                                        "eyeColor", "skinTone", "style")}}
    content_policy.check(request)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        content_policy.check(request)
        times.append((time.perf_counter() - started) * 1000)
    return times


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def scores() -> None:
    from tests.unit.test_policy_corpus import HELD_OUT, TUNING, by_rule_and_language, corpus, score

    print("| part | prompts | labelled refuse | refused | recall | labelled allow | wrongly refused | false refusals |")
    print("|---|---|---|---|---|---|---|---|")
    verdicts_all = None
    for name, paths in (("whole corpus", (TUNING, HELD_OUT)), ("tuning part", (TUNING,)),
                        ("held-out fifth", (HELD_OUT,))):
        total, verdicts = score(corpus(*paths))
        verdicts_all = verdicts_all or verdicts
        print(f"| {name} | {total.refused + total.allowed} | {total.refused} | {total.caught} | "
              f"{total.recall:.1%} | {total.allowed} | {total.false_refusals} | {total.false_refusal_rate:.1%} |")
        for text in total.misses:
            print(f"|  missed: {text!r} |")
        for text, rule in total.wrongly_refused:
            print(f"|  wrongly refused ({rule}): {text!r} |")
    print()
    print("| rule | language | labelled | precision | recall |")
    print("|---|---|---|---|---|")
    for (rule, lang), s in by_rule_and_language(verdicts_all).items():
        print(f"| `{rule}` | {lang} | {s['labelled']} | {s['precision']:.1%} | {s['recall']:.1%} |")
    by_lang = {}
    for row, got in verdicts_all:
        by_lang.setdefault(row["language"], []).append((row, got))
    print()
    print("| language | prompts | recall | false refusals |")
    print("|---|---|---|---|")
    for lang, items in sorted(by_lang.items()):
        refuse = [(r, g) for r, g in items if r["label"] == "refuse"]
        allow = [(r, g) for r, g in items if r["label"] == "allow"]
        recall = sum(g is not None for _, g in refuse) / len(refuse) if refuse else 1.0
        false = sum(g is not None for _, g in allow) / len(allow) if allow else 0.0
        print(f"| {lang} | {len(items)} | {recall:.1%} ({len(refuse)}) | {false:.1%} ({len(allow)}) |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from tests.unit.test_policy_corpus import HELD_OUT, TUNING, corpus

    scores()
    rows = corpus(TUNING, HELD_OUT)
    loads = load_ms()
    checks = check_us(rows, args.rounds)
    print()
    print(f"load (import + rules + Unicode data, fresh process): median {statistics.median(loads):.1f} ms "
          f"(min {min(loads):.1f}, max {max(loads):.1f}, {len(loads)} runs)")
    every = [t for per_prompt in checks for t in per_prompt]
    best = [min(per_prompt) for per_prompt in checks]
    print(f"check one prompt, {len(rows)} corpus prompts, best of {args.rounds} rounds each (the check's own cost): "
          f"median {statistics.median(best):.0f} µs, p99 {p99(best):.0f} µs, max {max(best):.0f} µs")
    print(f"check one prompt, all {len(every)} timings (with whatever else the machine runs): "
          f"median {statistics.median(every):.0f} µs, p99 {p99(every):.0f} µs, max {max(every):.0f} µs")
    largest = largest_request_ms(args.rounds)
    print(f"check the largest request (every field at its maximum length, ~2,900 characters): "
          f"median {statistics.median(largest):.1f} ms, max {max(largest):.1f} ms ({len(largest)} runs)")


if __name__ == "__main__":
    main()
