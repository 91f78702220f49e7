"""The labelled corpus (tests/data/policy-corpus*.jsonl, English, Indonesian and Malay): the policy
refuses at least 98% of the prompts labelled refuse and wrongly refuses at most 1% of those labelled
allow, on the whole corpus and on the held-out fifth (written and frozen before the rules were tuned)
scored apart. Per rule and per language precision/recall: `python -m bench.content_policy`."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chalicelib.generation import content_policy

DATA = Path(__file__).resolve().parents[1] / "data"
TUNING = DATA / "policy-corpus.jsonl"
HELD_OUT = DATA / "policy-corpus.heldout.jsonl"
MIN_RECALL = 0.98
MAX_FALSE_REFUSALS = 0.01


def corpus(*paths: Path) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.read_text(encoding="utf-8").splitlines() if line]


def request_of(row: dict) -> dict:
    return {"prompt": row["text"], **(row.get("fields") or {})}


@dataclass
class Score:
    refused: int = 0            # labelled refuse
    caught: int = 0             # … and refused
    allowed: int = 0            # labelled allow
    false_refusals: int = 0     # … and refused
    misses: list = field(default_factory=list)
    wrongly_refused: list = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.caught / self.refused if self.refused else 1.0

    @property
    def false_refusal_rate(self) -> float:
        return self.false_refusals / self.allowed if self.allowed else 0.0


def score(rows: list[dict]) -> tuple[Score, list[tuple[dict, str | None]]]:
    total, verdicts = Score(), []
    for row in rows:
        violation = content_policy.check(request_of(row))
        got = violation.rule if violation else None
        verdicts.append((row, got))
        if row["label"] == "refuse":
            total.refused += 1
            total.caught += got is not None
            if got is None:
                total.misses.append(row["text"])
        else:
            total.allowed += 1
            total.false_refusals += got is not None
            if got is not None:
                total.wrongly_refused.append((row["text"], got))
    return total, verdicts


def by_rule_and_language(verdicts) -> dict[tuple[str, str], dict[str, float]]:
    """Precision and recall of each rule, per language ('all' too): a refusal counts for the rule it names."""
    keys = {(row["rule"], lang) for row, _ in verdicts if row["rule"] for lang in (row["language"], "all")}
    out = {}
    for rule, lang in sorted(keys):
        rows = [(r, got) for r, got in verdicts if lang in ("all", r["language"])]
        tp = sum(1 for r, got in rows if r["rule"] == rule and got == rule)
        labelled = sum(1 for r, _ in rows if r["rule"] == rule)
        named = sum(1 for _, got in rows if got == rule)
        out[(rule, lang)] = {"labelled": labelled, "precision": tp / named if named else 1.0,
                             "recall": tp / labelled if labelled else 1.0}
    return out


def test_the_corpus_is_big_enough_and_a_fifth_of_it_is_held_out():
    rows, held_out = corpus(TUNING, HELD_OUT), corpus(HELD_OUT)
    assert len(rows) >= 500
    assert len(held_out) * 5 >= len(rows) and all(r["frozen"] for r in held_out)
    assert {r["language"] for r in rows} >= {"en", "id"}
    assert {r["rule"] for r in rows if r["label"] == "refuse"} == {"minors", "sexual_content", "graphic_violence",
                                                                    "hate_symbols"}


@pytest.mark.parametrize("paths", [(TUNING, HELD_OUT), (HELD_OUT,)], ids=["whole corpus", "held-out fifth"])
def test_the_policy_refuses_98_percent_and_wrongly_refuses_at_most_1_percent(paths):
    total, _ = score(corpus(*paths))
    assert total.recall >= MIN_RECALL, total.misses
    assert total.false_refusal_rate <= MAX_FALSE_REFUSALS, total.wrongly_refused
