"""The contract every registered strategy must keep (DESIGN.md, "The Strategy contract")."""

from __future__ import annotations

import numpy as np
import pytest

from lit_al.errors import StrategyError
from lit_al.strategies import get_strategy, registered_strategies
from strategy_fixtures import make_constant_outputs, make_outputs

NAMES = sorted(registered_strategies())
N = 60

#: Strategies whose picks are random draws by design, so that identical examples do not come out
#: as the lowest pool indices (they must still be valid and deterministic under the seed). Every
#: other strategy, a new one included, must break the exact ties of identical examples by the lower
#: pool index: scores (uncertainty, Bayesian, MII, EGL, CAL, density, auxiliary models) tie
#: exactly; geometry (k-center, k-means, coverage, typicality) sees coincident points, whose
#: distances are exactly equal, and takes the lowest positions.
RANDOM_BY_DESIGN = {
    "random": "a uniform draw",
    "badge": "k-means++ seeding draws with P ∝ D²; all D² = 0 falls back to a uniform draw",
    "dal": "each discriminator sees a random candidate subset of U",
}


def _build(name, multi_label):
    try:
        return get_strategy(name, multi_label=multi_label)
    except StrategyError as exc:  # a strategy may refuse a task, clearly, at configuration time
        assert "label" in str(exc)
        pytest.skip(f"{name} refuses multi_label={multi_label}: {exc}")


def _problem(strategy, multi_label, n=N, n_labeled=12, seed=0, constant=False):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    labeled, unlabeled = np.sort(perm[:n_labeled]), np.sort(perm[n_labeled:])
    make = make_constant_outputs if constant else make_outputs
    outputs = make(strategy.needs, n=n, multi_label=multi_label, labeled=labeled, seed=seed)
    if not strategy.predict_labeled:  # rows the strategy did not ask for are NaN
        for name, array in outputs.items():
            if name == "labels":
                continue
            if name == "mc_probs":
                array[:, labeled] = np.nan
            else:
                array[labeled] = np.nan
    return outputs, labeled, unlabeled


@pytest.mark.parametrize("multi_label", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("name", NAMES)
class TestStrategyContract:
    def test_budget_unique_unlabeled(self, name, multi_label):
        strategy = _build(name, multi_label)
        outputs, labeled, unlabeled = _problem(strategy, multi_label)
        picked = strategy.select(outputs, labeled, unlabeled, 10).indices
        assert picked.shape == (10,)
        assert np.unique(picked).size == 10
        assert np.isin(picked, unlabeled).all()
        assert not np.isin(picked, labeled).any()

    def test_deterministic_under_seed(self, name, multi_label):
        outputs, labeled, unlabeled = _problem(_build(name, multi_label), multi_label)
        a = _build(name, multi_label).select(outputs, labeled, unlabeled, 10, seed=7).indices
        b = _build(name, multi_label).select(outputs, labeled, unlabeled, 10, seed=7).indices
        np.testing.assert_array_equal(a, b)

    def test_pool_smaller_than_budget_returns_whole_pool(self, name, multi_label):
        strategy = _build(name, multi_label)
        outputs, labeled, unlabeled = _problem(strategy, multi_label)
        small = unlabeled[:5]
        rest = np.setdiff1d(np.arange(N), np.concatenate([labeled, small]))
        picked = strategy.select(outputs, np.concatenate([labeled, rest]), small, 10).indices if strategy.predict_labeled else strategy.select(outputs, labeled, small, 10).indices
        assert sorted(picked.tolist()) == sorted(small.tolist())

    def test_empty_pool(self, name, multi_label):
        strategy = _build(name, multi_label)
        outputs, labeled, unlabeled = _problem(strategy, multi_label)
        assert strategy.select(outputs, np.arange(N), np.array([], dtype=int), 5).indices.size == 0

    def test_identical_examples_tie_by_lower_pool_index(self, name, multi_label):
        """Every example has the same outputs: an exact tie everywhere (DESIGN.md: ties by lower pool index)."""
        strategy = _build(name, multi_label)
        outputs, labeled, unlabeled = _problem(strategy, multi_label, constant=True)
        picked = strategy.select(outputs, labeled, unlabeled, 10).indices
        again = _build(name, multi_label).select(outputs, labeled, unlabeled, 10).indices
        np.testing.assert_array_equal(picked, again)
        assert np.unique(picked).size == 10 and np.isin(picked, unlabeled).all()
        if name not in RANDOM_BY_DESIGN:
            assert picked.tolist() == unlabeled[:10].tolist()

    def test_bad_budget_refused(self, name, multi_label):
        strategy = _build(name, multi_label)
        outputs, labeled, unlabeled = _problem(strategy, multi_label)
        with pytest.raises(StrategyError):
            strategy.select(outputs, labeled, unlabeled, 0).indices


def test_unknown_strategy_and_option_are_clear():
    with pytest.raises(StrategyError, match="unknown strategy 'nope'"):
        get_strategy("nope")
    with pytest.raises(StrategyError, match="no option"):
        get_strategy("entropy", temperature=2.0)
