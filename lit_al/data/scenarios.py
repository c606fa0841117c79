"""Initial labeled sets: the scenarios of the IBM study (STRATEGIES.md §3.1) plus cold start.

- ``random``: ``n`` random pool examples with their gold labels (balanced scenario).
- ``per_class``: ``n`` random examples of each class (multi-label: of each label).
- ``positives``: ``n`` random gold positives plus ``weak_negatives`` random other
  pool examples labelled negative without looking at them (imbalanced scenario).
- ``keyword_query``: ``n`` random texts matching the regular expression ``query``
  (searched anywhere in the text, case-sensitive by default, as IBM's pandas
  ``str.contains``), with their gold labels, plus ``weak_negatives`` weak
  negatives (imbalanced-practical; the paper uses 100 + 100).
- ``none``: cold start; the strategy picks round 1 with the pretrained model.

With an unlabeled pool (no gold labels: a person answers), ``keyword_query``
*proposes* its hits to the person as round 0's batch instead of labeling them,
weak negatives are still labeled unseen, and the scenarios that read gold labels
(``random``, ``per_class``, ``positives``, ``all``) are refused. Seed labels a person
already has come from ``labels_file`` (read by the loop), alone or with a scenario.
- ``all``: every pool example with its gold label: the "all data" reference run of
  an experiment (BEAL's All Data; STRATEGIES.md §2.7), usually with ``loop.rounds: 0``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .schema import LabelSchema

log = logging.getLogger(__name__)

Scenario = Literal["random", "per_class", "positives", "keyword_query", "none", "all"]


@dataclass
class InitialSet:
    """How round 0's labeled set is drawn.

    Args:
        scenario: random | per_class | positives | keyword_query | none | all.
        n: examples drawn (per class for ``per_class``; positives or query hits for the imbalanced ones).
        weak_negatives: pool examples labelled negative unseen (``positives`` and ``keyword_query``).
        query: regular expression for ``keyword_query`` (e.g. ``Where|countr.*|cit.*``).
        case_sensitive: whether the query is case-sensitive (IBM: yes).
        labels_file: seed labels a person gave: an ``id,label`` CSV or any answer format of
            ``lit_al label`` (Label Studio JSON, Prodigy / Argilla JSONL); added to the initial set.
    """

    scenario: Scenario = "random"
    n: int = 100
    weak_negatives: int = 0
    query: str | None = None
    case_sensitive: bool = True
    labels_file: str | None = None


@dataclass(frozen=True)
class SeedLabels:
    """Round 0's labeled examples (``indices``, ``labels``, ``sources``) and, without gold labels, the
    examples ``proposed`` to a person as round 0's batch."""

    indices: np.ndarray
    labels: list[tuple[str, ...]]
    sources: list[str]
    proposed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


#: Scenarios that read the pool's gold labels.
GOLD_SCENARIOS = ("random", "per_class", "positives", "all")


def draw_initial_set(
    spec: InitialSet,
    texts: Sequence[str],
    gold: Sequence[tuple[str, ...]] | None,
    schema: LabelSchema,
    rng: np.random.Generator,
) -> SeedLabels:
    """Draw the initial labeled set; ``gold`` holds each pool example's class names (None: an unlabeled pool)."""
    n_pool = len(texts)
    if gold is None and spec.scenario in GOLD_SCENARIOS:
        raise ConfigError(
            f"data.initial.scenario {spec.scenario!r} reads gold labels, and the pool has none (an unlabeled pool, "
            "labeled by a person): use none or keyword_query (its hits are proposed to you), and/or data.initial.labels_file"
        )
    if spec.scenario == "none":
        return SeedLabels(np.empty(0, dtype=np.int64), [], [])
    if spec.scenario == "all":
        return _gold_only(np.arange(n_pool, dtype=np.int64), gold)
    if spec.n < 0 or spec.weak_negatives < 0:
        raise ConfigError("data.initial.n and data.initial.weak_negatives must be >= 0")
    if spec.scenario == "random":
        chosen = rng.permutation(n_pool)[: min(spec.n, n_pool)]
        return _gold_only(chosen, gold)
    if spec.scenario == "per_class":
        chosen: list[int] = []
        taken = np.zeros(n_pool, dtype=bool)
        for name in schema.names:
            members = np.array([i for i in range(n_pool) if name in gold[i] and not taken[i]], dtype=np.int64)
            if members.size < spec.n:
                log.warning("per_class: class %r has only %d pool examples (asked for %d)", name, members.size, spec.n)
            pick = rng.permutation(members)[: spec.n]
            taken[pick] = True
            chosen.extend(pick.tolist())
        return _gold_only(np.array(chosen, dtype=np.int64), gold)
    if spec.scenario == "keyword_query" and gold is None:
        return _propose_hits(spec, texts, schema, rng)
    if spec.scenario in ("positives", "keyword_query"):
        positive, negative = _binary_classes(schema, spec.scenario)
        if spec.scenario == "positives":
            candidates = np.array([i for i in range(n_pool) if positive in gold[i]], dtype=np.int64)
            what = f"gold positives ({positive})"
        else:
            candidates = keyword_hits(texts, spec.query, spec.case_sensitive)
            what = f"texts matching {spec.query!r}"
        if candidates.size == 0:
            raise DataError(f"data.initial: no {what} in the pool")
        if candidates.size < spec.n:
            log.warning("data.initial: only %d %s (asked for %d); taking them all", candidates.size, what, spec.n)
        hits = rng.permutation(candidates)[: spec.n]
        rest = np.setdiff1d(np.arange(n_pool), hits)
        weak = rng.permutation(rest)[: min(spec.weak_negatives, rest.size)]
        seed = _gold_only(hits, gold)
        return SeedLabels(
            np.concatenate([seed.indices, weak]).astype(np.int64),
            seed.labels + [(negative,)] * weak.size,
            seed.sources + ["weak_negative"] * weak.size,
        )
    raise ConfigError(f"data.initial.scenario: unknown scenario {spec.scenario!r}")


def _propose_hits(spec: InitialSet, texts: Sequence[str], schema: LabelSchema, rng: np.random.Generator) -> SeedLabels:
    """Without gold labels: ``n`` random query hits proposed to a person, plus unseen weak negatives."""
    candidates = keyword_hits(texts, spec.query, spec.case_sensitive)
    hits = np.sort(rng.permutation(candidates)[: spec.n])
    if spec.weak_negatives == 0:
        return SeedLabels(np.empty(0, dtype=np.int64), [], [], hits)
    _, negative = _binary_classes(schema, spec.scenario)
    rest = np.setdiff1d(np.arange(len(texts)), hits)
    weak = rng.permutation(rest)[: min(spec.weak_negatives, rest.size)].astype(np.int64)
    return SeedLabels(weak, [(negative,)] * weak.size, ["weak_negative"] * weak.size, hits)


def keyword_pattern(query: str | None, case_sensitive: bool = True) -> re.Pattern:
    """The compiled ``data.initial.query`` (one clear line when it is missing or not a regular expression)."""
    if not query:
        raise ConfigError("data.initial.query is required for the keyword_query scenario")
    try:
        return re.compile(query, 0 if case_sensitive else re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"data.initial.query {query!r} is not a valid regular expression: {exc}") from None


def keyword_hits(texts: Sequence[str], query: str | None, case_sensitive: bool = True) -> np.ndarray:
    """Pool indices whose text contains a match of ``query`` anywhere (``re.search``)."""
    pattern = keyword_pattern(query, case_sensitive)
    hits = np.array([i for i, text in enumerate(texts) if pattern.search(text)], dtype=np.int64)
    if hits.size == 0:
        raise DataError(f"data.initial.query {query!r} matches no text in the pool")
    return hits


def _gold_only(indices: np.ndarray, gold: Sequence[tuple[str, ...]]) -> SeedLabels:
    indices = np.asarray(indices, dtype=np.int64)
    return SeedLabels(indices, [gold[i] for i in indices], ["seed"] * indices.size)


def _binary_classes(schema: LabelSchema, scenario: str) -> tuple[str, str]:
    if schema.multi_label or schema.num_classes != 2 or schema.positive_index is None:
        raise ConfigError(
            f"data.initial.scenario {scenario!r} needs a binary task with a positive class: "
            "set data.target_label (one-vs-rest) or data.positive_label"
        )
    positive = schema.names[schema.positive_index]
    negative = schema.names[1 - schema.positive_index]
    return positive, negative
