"""Stopping signals: hand-computed kappa, entropy and balance values; the stop set and its history; stop_when."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lit_al.analysis.stopping import (
    class_balance,
    cohen_kappa,
    expected_error,
    normalized_uncertainty,
    predicted_labels,
    stabilized,
)
from lit_al.errors import ConfigError
from lit_al.stopping import StopSetHistory, StopWhen, draw_stop_set, label_balance, pool_max_uncertainty, stop_set_signals


# ------------------------------------------------------------------ kappa
def test_kappa_hand_computed():
    # p_o = 3/4; class frequencies (1/2, 1/2) and (1/4, 3/4): p_e = 1/8 + 3/8 = 1/2; kappa = (3/4 - 1/2) / (1/2)
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    # complete disagreement on a balanced pair: p_o = 0, p_e = 1/2 -> -1
    assert cohen_kappa([0, 1], [1, 0]) == pytest.approx(-1.0)
    assert cohen_kappa([2, 0, 1, 2], [2, 0, 1, 2]) == pytest.approx(1.0)


def test_kappa_of_two_identical_constant_labelings_is_one():
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0  # p_e = 1: 0/0 by the formula


def test_kappa_multilabel_compares_every_decision():
    a = np.array([[True, False], [False, True]])
    b = np.array([[True, False], [True, True]])
    # flattened: [1,0,0,1] vs [1,0,1,1] -> p_o = 3/4, p_e = 1/2 -> 0.5
    assert cohen_kappa(a, b) == pytest.approx(0.5)


def test_kappa_matches_the_confusion_matrix_formula():
    # kappa = (N * trace(M) - sum_c row_c * col_c) / (N^2 - sum_c row_c * col_c) over the confusion matrix M
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    b[:120] = a[:120]
    matrix = np.zeros((4, 4))
    np.add.at(matrix, (a, b), 1)
    n, chance = matrix.sum(), (matrix.sum(1) * matrix.sum(0)).sum()
    assert cohen_kappa(a, b) == pytest.approx((n * np.trace(matrix) - chance) / (n * n - chance))


def test_kappa_errors_and_empty():
    with pytest.raises(ValueError):
        cohen_kappa([0, 1], [0])
    assert math.isnan(cohen_kappa([], []))


def test_predicted_labels():
    probs = np.array([[0.2, 0.7, 0.1], [0.5, 0.2, 0.3]])
    assert predicted_labels(probs, False).tolist() == [1, 0]
    assert predicted_labels(probs, True, 0.3).tolist() == [[False, True, False], [True, False, True]]


# --------------------------------------------------------------- window
def test_stabilized_needs_a_full_window():
    mean, fired = stabilized([math.nan, 0.98, 1.0, 0.995], window=3, threshold=0.99)
    assert mean == pytest.approx((0.98 + 1.0 + 0.995) / 3) and fired
    assert not stabilized([0.98, 0.99, 0.995], window=3, threshold=0.99)[1]  # mean 0.98833 < 0.99
    for kappas in ([1.0, 1.0], [1.0, math.nan, 1.0]):
        mean, fired = stabilized(kappas, window=3)
        assert math.isnan(mean) and not fired
    with pytest.raises(ValueError):
        stabilized([1.0], window=0)


# ---------------------------------------------------------- uncertainty
def test_normalized_uncertainty_hand_computed():
    assert normalized_uncertainty(np.array([[0.5, 0.5], [1.0, 0.0]]), False) == pytest.approx([1.0, 0.0])
    assert normalized_uncertainty(np.full((1, 3), 1 / 3), False) == pytest.approx([1.0])
    # H(0.25, 0.75) = -(0.25 ln 0.25 + 0.75 ln 0.75) = 0.562335 nats; / ln 2 = 0.811278
    assert normalized_uncertainty(np.array([[0.25, 0.75]]), False) == pytest.approx([0.811278], abs=1e-6)
    # multi-label: per-label binary entropy / ln 2 -> (1 + 0) / 2
    assert normalized_uncertainty(np.array([[0.5, 1.0]]), True) == pytest.approx([0.5], abs=1e-9)


def test_expected_error_hand_computed():
    assert expected_error(np.array([[0.7, 0.2, 0.1], [0.4, 0.6, 0.0]]), False) == pytest.approx([0.3, 0.4])
    assert expected_error(np.array([[0.9, 0.4]]), True) == pytest.approx([0.25])


def test_class_balance():
    assert class_balance(np.array([2, 8, 4])) == pytest.approx(0.25)
    assert class_balance(np.array([0, 3])) == 0.0
    assert math.isnan(class_balance(np.array([0, 0])))


def test_label_balance_counts_per_class():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=np.float32)
    row = label_balance(targets, ["a", "b", "c"])
    assert row == {"labels_a": 3, "labels_b": 1, "labels_c": 1, "class_balance": pytest.approx(1 / 3)}
    empty = label_balance(np.zeros((0, 2)), ["a", "b"])
    assert empty["labels_a"] == 0 and math.isnan(empty["class_balance"])


# ------------------------------------------------------------ stop set
def test_stop_set_is_seeded_sorted_and_capped_by_the_pool():
    rows = draw_stop_set(1000, 50, seed=7)
    assert rows.size == 50 and np.all(np.diff(rows) > 0) and rows.max() < 1000
    assert np.array_equal(rows, draw_stop_set(1000, 50, seed=7))
    assert not np.array_equal(rows, draw_stop_set(1000, 50, seed=8))
    assert np.array_equal(draw_stop_set(30, 50, seed=7), np.arange(30))
    assert draw_stop_set(30, 0, seed=7).size == 0


def test_history_kappas_skip_rounds_without_predictions(tmp_path):
    history = StopSetHistory(tmp_path)
    history.save(0, np.array([0, 0, 1, 1]))
    # round 1 had no model (no file); round 2 compares with nothing, round 3 with round 2
    history.save(2, np.array([0, 1, 1, 1]))
    kappas = history.kappas(3, np.array([0, 1, 1, 1]))
    assert math.isnan(kappas[0]) and math.isnan(kappas[1]) and kappas[2] == pytest.approx(1.0)
    assert history.kappas(0, np.array([0])) == []
    assert history.load(5) is None


def test_stop_set_signals_hand_computed(tmp_path):
    history = StopSetHistory(tmp_path)
    history.save(0, np.array([0, 0, 1, 1]))
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.3, 0.7]])  # argmax 0, 1, 0, 1
    unlabeled = np.array([True, False, True, False])
    signals = stop_set_signals(probs, unlabeled, history, 1, multi_label=False, threshold=0.5, window=1)
    # [0,0,1,1] vs [0,1,0,1]: p_o = 1/2, p_e = 1/2 -> kappa 0
    assert signals["stop_kappa"] == pytest.approx(0.0) and signals["stop_kappa_mean"] == pytest.approx(0.0)
    # unlabeled rows 0 and 2: H(0.9, 0.1)/ln 2 = 0.468996, H(0.5, 0.5)/ln 2 = 1
    assert signals["stop_overall_uncertainty"] == pytest.approx((0.468996 + 1.0) / 2, abs=1e-6)
    assert "stop_max_uncertainty" not in signals  # the scored pool's, not the stop set's (pool_max_uncertainty)
    assert signals["stop_expected_error"] == pytest.approx((0.1 + 0.5) / 2)
    assert history.load(1).tolist() == [0, 1, 0, 1]
    nothing_left = stop_set_signals(probs, np.zeros(4, bool), history, 2, multi_label=False, threshold=0.5, window=3)
    assert math.isnan(nothing_left["stop_overall_uncertainty"]) and math.isnan(nothing_left["stop_kappa_mean"])


def test_max_uncertainty_is_that_of_the_pools_most_uncertain_example():
    """Zhu et al. 2008's max-confidence: the entropy of the example uncertainty sampling would query."""
    pool = np.array([[0.9, 0.1], [0.6, 0.4], [0.99, 0.01]])
    # H(0.6, 0.4) / ln 2 = -(0.6 ln 0.6 + 0.4 ln 0.4) / ln 2 = 0.970951, the largest of the three
    assert pool_max_uncertainty(pool, multi_label=False)["stop_max_uncertainty"] == pytest.approx(0.970951, abs=1e-6)
    three = np.array([[1 / 3, 1 / 3, 1 / 3], [0.8, 0.1, 0.1]])  # the uniform row: ln 3 / ln 3 = 1
    assert pool_max_uncertainty(three, multi_label=False)["stop_max_uncertainty"] == pytest.approx(1.0)
    # multi-label: mean binary entropy / ln 2 per row; row 0 (1 + 0.468996) / 2, row 1 0.468996
    labels = np.array([[0.5, 0.9], [0.1, 0.1]])
    assert pool_max_uncertainty(labels, multi_label=True)["stop_max_uncertainty"] == pytest.approx(0.734498, abs=1e-6)
    assert math.isnan(pool_max_uncertainty(np.empty((0, 2)), multi_label=False)["stop_max_uncertainty"])


# ------------------------------------------------------------ stop_when
def test_stop_when_fires_on_selected_criteria_only():
    signals = {"stop_kappa_mean": 0.995, "stop_overall_uncertainty": 0.05, "stop_max_uncertainty": 0.4,
               "stop_expected_error": math.nan}
    assert StopWhen().fired(signals) == []
    assert StopWhen(stabilizing_predictions=True).fired(signals) == ["stabilizing_predictions"]
    assert StopWhen(stabilizing_predictions=True, kappa=0.999).fired(signals) == []
    assert StopWhen(overall_uncertainty=0.1, max_uncertainty=0.3).fired(signals) == ["overall_uncertainty"]
    assert StopWhen(max_uncertainty=0.4, expected_error=1.0).fired(signals) == ["max_uncertainty"]  # NaN never fires
    assert StopWhen(stabilizing_predictions=True).fired({}) == []


@pytest.mark.parametrize("options", [{"kappa": 1.5}, {"window": 0}, {"overall_uncertainty": -0.1}, {"expected_error": 2}])
def test_stop_when_rejects_bad_options(options):
    with pytest.raises(ConfigError, match="loop.stop_when"):
        StopWhen(**options)
