"""MC-dropout scores and strategies against hand-computed values and brute-force references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import softmax

from lit_al.errors import StrategyError
from lit_al.functional import bayesian as B
from lit_al.functional.ranking import top_k
from lit_al.strategies import get_strategy


def h(*ps: float) -> float:
    return -sum(p * math.log(p) for p in ps if p > 0)


def hb(q: float) -> float:
    return h(q, 1.0 - q)


def random_mc(rng: np.random.Generator, T: int, n: int, C: int, spread: float = 1.5) -> np.ndarray:
    """Softmax passes around a per-example base, with real disagreement between passes."""
    return softmax(rng.normal(size=(1, n, C)) * 1.5 + rng.normal(size=(T, n, C)) * spread, axis=-1)


# ------------------------------------------------------------------ MC dropout / BALD
def test_mean_probs_and_mc_entropy_hand_computed():
    mc = np.array([[[0.9, 0.1]], [[0.5, 0.5]]])  # T=2, n=1, C=2
    np.testing.assert_allclose(B.mean_probs(mc), [[0.7, 0.3]])
    np.testing.assert_allclose(B.mc_entropy(mc), [h(0.7, 0.3)], rtol=1e-12)
    np.testing.assert_allclose(B.expected_entropy(mc), [(h(0.9, 0.1) + h(0.5, 0.5)) / 2], rtol=1e-12)
    np.testing.assert_allclose(B.bald(mc), [h(0.7, 0.3) - (h(0.9, 0.1) + math.log(2)) / 2], rtol=1e-10)


def test_mean_of_probabilities_not_logits():
    mc = np.array([[[0.99, 0.01]], [[0.4, 0.6]]])
    np.testing.assert_allclose(B.mean_probs(mc), [[0.695, 0.305]])
    logits = np.log(mc).mean(axis=0)
    assert not np.allclose(np.exp(logits) / np.exp(logits).sum(), [[0.695, 0.305]], atol=1e-2)


def test_multilabel_scores_hand_computed():
    mc = np.array([[[0.9, 0.2]], [[0.5, 0.2]]])  # label 2 agrees across passes: no information
    np.testing.assert_allclose(B.mc_entropy(mc, multi_label=True), [hb(0.7) + hb(0.2)], rtol=1e-12)
    expected_mi = hb(0.7) - (hb(0.9) + hb(0.5)) / 2
    np.testing.assert_allclose(B.bald(mc, multi_label=True), [expected_mi], rtol=1e-9)


def test_bald_clips_zero_and_one_and_is_zero_without_disagreement():
    mc = np.array([[[1.0, 0.0], [0.3, 0.7]], [[1.0, 0.0], [0.3, 0.7]]])
    for multi_label in (False, True):
        mi = B.bald(mc, multi_label=multi_label)
        assert np.isfinite(mi).all()
        assert (mi == 0.0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_agreeing_passes_give_exact_ties(dtype):
    """Distinct examples whose T passes agree all have MI = 0 exactly, so ties go to the lower index."""
    rng = np.random.default_rng(4)
    one_pass = softmax(rng.normal(size=(1, 40, 4)) * 2.0, axis=-1)
    mc = np.broadcast_to(one_pass, (10, 40, 4)).astype(dtype)
    sig = np.broadcast_to(1.0 / (1.0 + np.exp(-rng.normal(size=(1, 40, 5)))), (10, 40, 5)).astype(dtype)
    assert (B.bald(mc) == 0.0).all() and (B.bald(sig, multi_label=True) == 0.0).all()
    for saturation in ("restart", "bald"):
        result = B.batch_bald(mc, 6, np.random.default_rng(0), saturation=saturation)
        assert result.indices.tolist() == list(range(6))
        assert (result.gains[:1] == 0.0).all()
    index = np.arange(40)[::-1].copy()  # ties follow the tie key, not the position
    assert B.batch_bald(mc, 3, 0, index=index).indices.tolist() == [39, 38, 37]


def test_bald_nonnegative_and_float32_matches_float64():
    rng = np.random.default_rng(3)
    mc = random_mc(rng, 7, 50, 4)
    mi64 = B.bald(mc)
    mi32 = B.bald(mc.astype(np.float32))
    assert (mi64 >= -1e-10).all()
    np.testing.assert_allclose(mi32, mi64, atol=2e-6)
    sig = 1.0 / (1.0 + np.exp(-rng.normal(size=(7, 50, 5))))
    assert (B.bald(sig, multi_label=True) >= -1e-10).all()


# ------------------------------------------------------------------------------ BEAL
def literal_ec(mc: np.ndarray, reverse_ties: bool = False) -> np.ndarray:
    """EC = (1/T) sum_t sum_j R(Y_j^t) / π̂(j), with loops and an explicit rank table."""
    T, n, J = mc.shape
    out = []
    for x in range(n):
        rbar = [sum(2.0 ** mc[t, x, j] - 1.0 for t in range(T)) / T for j in range(J)]
        labels = list(range(J))[::-1] if reverse_ties else list(range(J))
        order = sorted(labels, key=lambda j: -rbar[j])  # stable: ties keep the listed order
        rank = {j: r + 1 for r, j in enumerate(order)}
        out.append(sum((2.0 ** mc[t, x, j] - 1.0) / rank[j] for t in range(T) for j in range(J)) / T)
    return np.array(out)


def test_beal_hand_computed():
    mc = np.array([[[1.0, 0.0, 0.5]]])
    np.testing.assert_allclose(B.beal_expected_confidence(mc), [1.0 + (math.sqrt(2) - 1) / 2], rtol=1e-12)
    mc = np.array([[[1.0, 0.0]], [[0.0, 0.0]]])  # r̄ = (0.5, 0)
    np.testing.assert_allclose(B.beal_expected_confidence(mc), [0.5], rtol=1e-12)


def test_beal_matches_literal_double_loop_with_ties():
    rng = np.random.default_rng(0)
    mc = rng.choice([0.0, 0.25, 0.5, 1.0], size=(3, 40, 6))
    mc[:, :, 4] = mc[:, :, 1]  # guaranteed ties in r̄
    got = B.beal_expected_confidence(mc)
    np.testing.assert_allclose(got, literal_ec(mc), rtol=1e-12)
    np.testing.assert_allclose(got, literal_ec(mc, reverse_ties=True), rtol=1e-12)
    smooth = rng.random((5, 30, 7))
    np.testing.assert_allclose(B.beal_expected_confidence(smooth), literal_ec(smooth), rtol=1e-12)


def test_beal_single_label_generalisation():
    p = np.array([[[0.2, 0.5, 0.3]]])
    expected = (2**0.5 - 1) + (2**0.3 - 1) / 2 + (2**0.2 - 1) / 3
    np.testing.assert_allclose(B.beal_expected_confidence(p), [expected], rtol=1e-12)
    flat, peaked = np.full(3, 1 / 3), np.array([0.98, 0.01, 0.01])
    ec = B.beal_expected_confidence(np.stack([flat, peaked])[None])
    assert ec[0] < ec[1]  # the lowest EC is the flattest posterior


# ------------------------------------------------------------------------- BatchBALD
def brute_joint_entropy(mc: np.ndarray, batch: list[int]) -> float:
    T, _, C = mc.shape
    total = 0.0
    for config in itertools.product(range(C), repeat=len(batch)):
        p = sum(math.prod(mc[t, i, c] for i, c in zip(batch, config)) for t in range(T)) / T
        if p > 0:
            total -= p * math.log(p)
    return total


def brute_score(mc: np.ndarray, batch: list[int]) -> float:
    T = mc.shape[0]
    conditional = sum(h(*mc[t, i]) for i in batch for t in range(T)) / T
    return brute_joint_entropy(mc, batch) - conditional


def brute_greedy(mc: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    chosen: list[int] = []
    scores: list[float] = []
    for _ in range(k):
        values = {x: brute_score(mc, chosen + [x]) for x in range(mc.shape[1]) if x not in chosen}
        best = max(values, key=lambda x: (values[x], -x))
        chosen.append(best)
        scores.append(values[best])
    return chosen, scores


@pytest.mark.parametrize("seed", range(5))
def test_batch_bald_matches_brute_force_enumeration(seed):
    mc = random_mc(np.random.default_rng(seed), T=4, n=6, C=3)
    result = B.batch_bald(mc, 3, np.random.default_rng(0))
    picks, scores = brute_greedy(mc, 3)
    assert result.indices.tolist() == picks
    assert result.exact.all()
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-6)
    joints = [brute_joint_entropy(mc, picks[: i + 1]) for i in range(3)]
    np.testing.assert_allclose(result.joint_entropies, joints, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.cumsum(result.gains), result.scores, atol=1e-6)


def test_batch_bald_first_pick_is_bald_argmax():
    for seed in range(3):
        mc = random_mc(np.random.default_rng(seed), T=10, n=300, C=5)
        index = np.random.default_rng(seed).permutation(300) + 1000
        result = B.batch_bald(mc, 4, np.random.default_rng(0), index=index)
        assert result.indices[0] == top_k(B.bald(mc), 1, index=index)[0]
        np.testing.assert_allclose(result.scores[0], B.bald(mc)[result.indices[0]], atol=1e-6)


def test_batch_bald_ties_go_to_the_lower_index():
    mc = random_mc(np.random.default_rng(4), T=6, n=8, C=3)
    best = int(np.argmax(B.bald(mc)))
    copy = 7 if best != 7 else 0
    mc[:, copy] = mc[:, best]
    low, high = min(best, copy), max(best, copy)
    assert B.batch_bald(mc, 1, 0).indices[0] == low
    index = np.arange(8)[::-1]  # pool indices reversed: the other copy now has the lower one
    assert B.batch_bald(mc, 1, 0, index=index).indices[0] == high


def test_batch_bald_monte_carlo_approaches_exact():
    mc = random_mc(np.random.default_rng(11), T=4, n=6, C=3)
    result = B.batch_bald(mc, 3, np.random.default_rng(5), num_samples=100_000, max_exact_configs=1)
    assert result.exact.tolist() == [True, False, False]
    picks = result.indices.tolist()
    exact = [brute_joint_entropy(mc, picks[: i + 1]) for i in range(3)]
    np.testing.assert_allclose(result.joint_entropies, exact, atol=0.02)
    small = B.batch_bald(mc, 3, np.random.default_rng(5), num_samples=8, max_exact_configs=1)
    assert small.indices.shape == (3,)


def saturating_mc(seed: int, T: int, n: int, C: int) -> np.ndarray:
    """Confident passes with mild disagreement: BatchBALD gains shrink and bunch up, bounds must be tight."""
    rng = np.random.default_rng(seed)
    return softmax(rng.normal(size=(1, n, C)) * 2.0 + rng.normal(size=(T, n, C)) * 0.5, axis=-1).astype(np.float32)


def test_batch_bald_pruning_is_exact_in_both_regimes():
    mc = saturating_mc(0, T=8, n=600, C=5)
    full = B.batch_bald(mc, 30, np.random.default_rng(1), num_samples=200, prune=False)
    assert full.exact.any() and not full.exact.all() and not full.saturated.any()
    for options in (dict(), dict(bound_cache_bytes=0), dict(chunk_size=300)):
        pruned = B.batch_bald(mc, 30, np.random.default_rng(1), num_samples=200, **options)
        np.testing.assert_array_equal(pruned.indices, full.indices)
        np.testing.assert_allclose(pruned.scores, full.scores, rtol=1e-6, atol=1e-6)
        assert (pruned.evaluated < full.evaluated).all()  # the bounds did discard candidates


def sharp_mc(seed: int, T: int, n: int, C: int, sharpness: float) -> np.ndarray:
    """Nearly deterministic passes that disagree: a few labels single out the pass, then BatchBALD saturates."""
    return softmax(np.random.default_rng(seed).normal(size=(T, n, C)) * sharpness, axis=-1).astype(np.float32)


@pytest.mark.parametrize("seed", range(3))
def test_batch_bald_saturation_rules_against_brute_force(seed):
    T, n, C, k, threshold = 4, 40, 3, 9, 1e-3
    mc = sharp_mc(seed, T, n, C, 8.0)
    options = dict(max_exact_configs=10**5, saturation_gain=threshold)  # exact enumeration throughout
    greedy = B.batch_bald(mc, k, 0, saturation="greedy", **options)
    restart = B.batch_bald(mc, k, 0, saturation="restart", **options)
    bald = B.batch_bald(mc, k, 0, saturation="bald", **options)
    assert not greedy.saturated.any() and (greedy.sub_batch == 0).all()
    first = int(np.flatnonzero(restart.saturated)[0])
    assert first >= 1
    # before the first saturated step every rule is the greedy search, which saturates exactly there
    for result in (restart, bald):
        assert result.indices[:first].tolist() == greedy.indices[:first].tolist()
        assert not result.saturated[:first].any()
    assert (greedy.gains[:first] >= threshold).all() and greedy.gains[first] < threshold
    chosen = greedy.indices[:first].tolist()
    base = brute_score(mc, chosen)
    assert max(brute_score(mc, chosen + [x]) - base for x in range(n) if x not in chosen) < threshold
    # restart: the next sub-batch is a fresh BatchBALD batch over the candidates left
    rest = np.setdiff1d(np.arange(n), restart.indices[:first])
    second = restart.sub_batch == 1
    assert restart.sub_batch[first] == 1 and restart.saturated[first]
    fresh = B.batch_bald(mc[:, rest], int(second.sum()), 0, **options)
    assert rest[fresh.indices].tolist() == restart.indices[second].tolist()
    np.testing.assert_allclose(restart.gains[second], fresh.gains)
    np.testing.assert_allclose(restart.scores[second], fresh.scores)
    # bald: from the saturated step on, the highest BALD left, with the (tiny) gain of each pick
    order = [x for x in top_k(B.bald(mc), n).tolist() if x not in chosen]
    assert bald.indices[first:].tolist() == order[: k - first]
    assert bald.saturated[first:].all() and (bald.sub_batch == 0).all()
    assert (bald.gains[first:] < threshold).all()
    picks = bald.indices.tolist()
    np.testing.assert_allclose(bald.scores[first + 1], brute_score(mc, picks[: first + 2]), atol=1e-5)


@pytest.mark.parametrize("saturation", ["restart", "bald"])
def test_batch_bald_saturation_same_picks_with_and_without_pruning(saturation):
    mc = sharp_mc(0, T=8, n=400, C=5, sharpness=3.0)
    full = B.batch_bald(mc, 25, np.random.default_rng(1), num_samples=200, saturation=saturation, prune=False)
    assert full.saturated.any() and not full.exact.all()
    pruned = B.batch_bald(mc, 25, np.random.default_rng(1), num_samples=200, saturation=saturation)
    np.testing.assert_array_equal(pruned.indices, full.indices)
    np.testing.assert_array_equal(pruned.saturated, full.saturated)
    np.testing.assert_allclose(pruned.scores, full.scores, rtol=1e-6, atol=1e-6)
    assert (pruned.evaluated < full.evaluated).all()


def test_batch_bald_bounds_are_upper_bounds():
    T, n, C = 8, 300, 5
    mc = saturating_mc(1, T, n, C)
    conditional = B.expected_entropy(mc)
    everyone = np.arange(n)
    cached = B._Bounds(mc, B.mean_probs(mc), B.bald(mc), 1 << 16, 1 << 30)
    uncached = B._Bounds(mc, B.mean_probs(mc), B.bald(mc), 1 << 16, 0)
    rng = np.random.default_rng(2)
    configs = B._Configurations(T)
    chosen: list[np.ndarray] = []
    for step in range(40):
        posteriors = configs.posteriors()
        gains = B._weighted_entropy(posteriors.astype(np.float32), configs.weight, mc, everyone, 1 << 16) - conditional
        tangent = cached.tangent_bound(configs.weight @ posteriors)
        anchor = cached.anchor_bound(posteriors, configs.weight, everyone, conditional)
        recomputed = uncached.anchor_bound(posteriors, configs.weight, everyone, conditional)
        np.testing.assert_allclose(anchor, recomputed, atol=1e-5)
        bounds = [tangent, anchor]
        for groups in (T + 4, 64):
            if groups < configs.size:
                centers, mass = B._group_posteriors(posteriors, configs.weight, groups, 1 << 16)
                np.testing.assert_allclose(mass.sum(), configs.weight.sum())
                bounds.append(B._weighted_entropy(centers.astype(np.float32), mass, mc, everyone, 1 << 16) - conditional)
        for bound in bounds:
            assert (bound >= gains - 2e-6).all(), (step, configs.exact, float((gains - bound).max()))
        if step == 0:
            np.testing.assert_allclose(tangent, gains, atol=2e-6)  # the empty batch: the bound is BALD itself
        pick = rng.integers(n)
        chosen.append(mc[:, pick].astype(np.float64))
        if configs.exact and configs.size * C <= 150:
            configs.extend_exact(chosen[-1])
        elif configs.exact:
            configs.start_sampling(chosen, 150, rng)
        else:
            configs.extend_sampled(chosen[-1], rng)


def test_batch_bald_deterministic_and_validated():
    mc = random_mc(np.random.default_rng(1), T=5, n=60, C=3)
    a = B.batch_bald(mc, 8, np.random.default_rng(3), num_samples=40)
    b = B.batch_bald(mc, 8, np.random.default_rng(3), num_samples=40)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)
    everything = B.batch_bald(mc[:, :7], 10, 0)
    assert sorted(everything.indices.tolist()) == list(range(7))
    with pytest.raises(ValueError, match="num_samples"):
        B.batch_bald(mc, 3, 0, num_samples=4)
    with pytest.raises(ValueError, match="max_exact_configs"):
        B.batch_bald(mc, 3, 0, max_exact_configs=0)
    with pytest.raises(ValueError, match="chunk_size"):
        B.batch_bald(mc, 3, 0, chunk_size=0)
    with pytest.raises(ValueError, match="saturation"):
        B.batch_bald(mc, 3, 0, saturation="stop")
    with pytest.raises(ValueError, match="saturation_gain"):
        B.batch_bald(mc, 3, 0, saturation_gain=-1.0)


# ------------------------------------------------------------------------ strategies
def test_prediction_options_and_defaults():
    assert get_strategy("mc_dropout").prediction_options() == {"mc_passes": 10, "mc_scope": "full"}
    assert get_strategy("bald").prediction_options() == {"mc_passes": 10, "mc_scope": "full"}
    assert get_strategy("batch_bald").prediction_options() == {"mc_passes": 20, "mc_scope": "full", "mc_consistent": True}
    assert get_strategy("beal", multi_label=True).prediction_options() == {"mc_passes": 100, "mc_scope": "full"}
    assert get_strategy("bald", mc_passes=30, mc_scope="head").prediction_options() == {"mc_passes": 30, "mc_scope": "head"}
    det = get_strategy("beal_deterministic")
    assert det.needs == frozenset({"probs"}) and det.prediction_options() == {}
    for name in ("mc_dropout", "bald", "batch_bald", "beal"):
        strategy = get_strategy(name)
        assert strategy.needs == frozenset({"mc_probs"}) and strategy.requires_trained_model


@pytest.mark.parametrize(
    "name, options, words",
    [
        ("mc_dropout", {"mc_passes": 0}, "mc_passes"),
        ("mc_dropout", {"mc_scope": "all"}, "mc_scope"),
        ("bald", {"mc_passes": 1}, "mc_passes"),
        ("beal", {"mc_passes": 2.5}, "mc_passes"),
        ("batch_bald", {"num_samples": 10}, "num_samples"),
        ("batch_bald", {"chunk_size": 0}, "chunk_size"),
        ("batch_bald", {"max_exact_configs": 0}, "max_exact_configs"),
        ("batch_bald", {"saturation": "stop"}, "saturation"),
        ("batch_bald", {"saturation_gain": float("nan")}, "saturation_gain"),
    ],
)
def test_bad_options_are_refused_clearly(name, options, words):
    with pytest.raises(StrategyError, match=words) as info:
        get_strategy(name, **options)
    assert name in str(info.value)


def test_batch_bald_refuses_multi_label():
    with pytest.raises(StrategyError, match="label"):
        get_strategy("batch_bald", multi_label=True)


def test_mc_dropout_and_bald_rank_by_their_formulas():
    mc = np.array(
        [
            [[0.5, 0.5], [0.9, 0.1], [0.8, 0.2], [0.6, 0.4]],
            [[0.5, 0.5], [0.1, 0.9], [0.8, 0.2], [0.6, 0.4]],
        ]
    )  # pool 0: aleatoric only; 1: disagreement; 2: confident; 3: labeled
    outputs = {"mc_probs": mc}
    labeled, unlabeled = np.array([3]), np.array([0, 1, 2])
    dropout = get_strategy("mc_dropout")
    selection = dropout.select(outputs, labeled, unlabeled, 2)
    assert selection.indices.tolist() == [0, 1]  # H(p̄) = ln 2 tie -> lower index
    np.testing.assert_allclose(selection.scores, [math.log(2)] * 2)
    bald = get_strategy("bald")
    selection = bald.select(outputs, labeled, unlabeled, 1)
    assert selection.indices.tolist() == [1]
    np.testing.assert_allclose(selection.scores, [math.log(2) - h(0.9, 0.1)], rtol=1e-9)


def test_beal_strategies_select_lowest_expected_confidence():
    rng = np.random.default_rng(6)
    mc = 1.0 / (1.0 + np.exp(-rng.normal(size=(9, 30, 5)) * 2))
    mc[:, 12] = np.nan  # a labeled row nobody predicted
    unlabeled = np.setdiff1d(np.arange(30), [12])
    beal = get_strategy("beal", multi_label=True)
    selection = beal.select({"mc_probs": mc}, np.array([12]), unlabeled, 5)
    scores = B.beal_expected_confidence(mc[:, unlabeled])
    np.testing.assert_array_equal(selection.indices, unlabeled[top_k(scores, 5, largest=False, index=unlabeled)])
    assert np.all(np.diff(selection.scores) >= 0)
    probs = mc[0]
    det = get_strategy("beal_deterministic", multi_label=True)
    picks = det.select({"probs": probs}, np.array([12]), unlabeled, 5).indices
    scores = B.beal_expected_confidence(probs[unlabeled][None])
    np.testing.assert_array_equal(picks, unlabeled[top_k(scores, 5, largest=False, index=unlabeled)])


def test_batch_bald_strategy_maps_pool_indices():
    mc = random_mc(np.random.default_rng(8), T=6, n=50, C=3)
    labeled = np.arange(0, 50, 5)
    unlabeled = np.setdiff1d(np.arange(50), labeled)
    mc[:, labeled] = np.nan
    strategy = get_strategy("batch_bald", mc_passes=6, num_samples=60)
    selection = strategy.select({"mc_probs": mc}, labeled, unlabeled, 6, seed=4)
    reference = B.batch_bald(mc[:, unlabeled], 6, np.random.default_rng(4), num_samples=60, index=unlabeled)
    np.testing.assert_array_equal(selection.indices, unlabeled[reference.indices])
    np.testing.assert_allclose(selection.scores, reference.gains)
    assert selection.info["result"].indices.tolist() == reference.indices.tolist()
    sharp = sharp_mc(3, T=6, n=50, C=3, sharpness=6.0)
    for rule in ("bald", "greedy"):
        strategy = get_strategy("batch_bald", mc_passes=6, num_samples=60, saturation=rule, saturation_gain=1e-3)
        picks = strategy.select({"mc_probs": sharp}, labeled, unlabeled, 12).indices
        reference = B.batch_bald(
            sharp[:, unlabeled], 12, np.random.default_rng(0), num_samples=60, saturation=rule, saturation_gain=1e-3
        )
        assert reference.saturated.any() == (rule == "bald")
        np.testing.assert_array_equal(picks, unlabeled[reference.indices])
    with pytest.raises(StrategyError, match="num_samples"):
        many_passes = {"mc_probs": random_mc(np.random.default_rng(0), 30, 20, 3)}
        get_strategy("batch_bald", num_samples=20).select(many_passes, np.array([], int), np.arange(20), 3).indices
