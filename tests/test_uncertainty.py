"""LC, margin, entropy (single- and multi-label) against hand-computed values; the top-k rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lit_al.functional import uncertainty as U
from lit_al.functional.ranking import top_k
from lit_al.strategies import get_strategy

P = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0], [0.5, 0.3, 0.2]])


def test_entropy_hand_computed():
    expected = [-(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)),
                -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)), 0.0,
                -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))]
    np.testing.assert_allclose(U.entropy(P), expected)


def test_least_confidence_and_margin_hand_computed():
    np.testing.assert_allclose(U.least_confidence(P), [0.3, 0.6, 0.0, 0.5])
    np.testing.assert_allclose(U.margin(P), [0.5, 0.0, 1.0, 0.2])


def test_multilabel_forms():
    q = np.array([[0.5, 0.9], [0.2, 0.1]])
    hb = lambda x: -(x * math.log(x) + (1 - x) * math.log(1 - x))
    np.testing.assert_allclose(U.multilabel_entropy(q), [hb(0.5) + hb(0.9), hb(0.2) + hb(0.1)])
    np.testing.assert_allclose(U.multilabel_least_confidence(q), [(0.5 + 0.1) / 2, (0.2 + 0.1) / 2])
    np.testing.assert_allclose(U.multilabel_least_confidence(q, "max"), [0.5, 0.2])
    np.testing.assert_allclose(U.multilabel_margin(q), [0.0, 0.6])
    np.testing.assert_allclose(U.multilabel_margin(q, "mean"), [0.4, 0.7])


def test_top_k_breaks_ties_by_lower_index():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.5, 0.9])
    assert top_k(scores, 4).tolist() == [1, 3, 5, 2]
    assert top_k(scores, 2, largest=False).tolist() == [0, 2]
    assert top_k(scores, 2, index=np.array([50, 40, 30, 20, 10, 0])).tolist() == [5, 3]
    with pytest.raises(ValueError):
        top_k(np.array([np.nan, 1.0]), 1)


@pytest.mark.parametrize(
    "name, expected",
    [("entropy", [3, 0, 2]), ("least_confidence", [3, 0, 2]), ("margin", [3, 0, 2])],
)
def test_strategies_pick_the_most_uncertain(name, expected):
    # pool: index 0 confident-ish, 1 labeled, 2 certain, 3 a tie between two classes
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [1.0, 0.0, 0.0], [0.45, 0.45, 0.1]])
    picked = get_strategy(name).select({"probs": probs}, np.array([1]), np.array([0, 2, 3]), 3).indices
    assert picked.tolist() == expected


def test_margin_ties_break_by_index():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]])
    assert get_strategy("margin").select({"probs": probs}, np.array([], int), np.arange(4), 2).indices.tolist() == [0, 2]


def test_random_is_seeded_and_independent_of_outputs():
    a = get_strategy("random").select({}, np.array([0]), np.arange(1, 50), 5, seed=3).indices
    b = get_strategy("random").select({}, np.array([0]), np.arange(1, 50), 5, seed=3).indices
    c = get_strategy("random").select({}, np.array([0]), np.arange(1, 50), 5, seed=4).indices
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


@pytest.mark.parametrize(
    "name,default,other,scores",
    [("least_confidence", "mean", "max", U.multilabel_least_confidence), ("margin", "min", "mean", U.multilabel_margin)],
)
def test_multi_label_reduce_changes_which_example_is_most_uncertain(name, default, other, scores):
    # row 0: one label at 0.5, the others sure; row 1: every label moderately unsure; row 2: all fairly sure
    q = np.array([[0.5, 0.99, 0.01], [0.7, 0.3, 0.7], [0.9, 0.1, 0.95]])
    largest = name == "least_confidence"
    picks = {}
    for reduce in (default, other):
        strategy = get_strategy(name, multi_label=True, multi_label_reduce=reduce)
        picked = strategy.select({"probs": q}, np.array([], dtype=int), np.arange(3), 3, seed=0)
        expected = scores(q, reduce)
        np.testing.assert_array_equal(picked.indices, top_k(expected, 3, largest=largest))
        np.testing.assert_allclose(picked.scores, expected[picked.indices])
        picks[reduce] = picked.indices[0]
    # the mean favours the evenly unsure row, max (LC) / min (margin) the row with one label at 0.5
    assert picks == {"mean": 1, ("max" if largest else "min"): 0}
