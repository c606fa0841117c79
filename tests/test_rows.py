"""Block-wise row reads (lit_al.rows) and the fast paths built on them: each equals its plain form exactly."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lit_al import index as I
from lit_al import rows as R
from lit_al.functional import geometry as G
from lit_al.functional import gradient as GR
from lit_al.functional import uncertainty as U
from lit_al.functional.ranking import top_k


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows, so every multi-block path runs on tiny arrays."""
    monkeypatch.setattr(R, "BLOCK_BYTES", 256)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", [None, np.float64])
def test_take_rows_equals_np_take(small_blocks, axis, dtype):
    rng = np.random.default_rng(0)
    array = rng.random((4, 57, 3)).astype(np.float32) if axis == 1 else rng.random((57, 6)).astype(np.float32)
    rows = np.sort(rng.choice(57, 40, replace=False))
    got = R.take_rows(array, rows, dtype, axis=axis)
    expected = np.take(array, rows, axis=axis).astype(dtype or np.float32)
    assert got.dtype == expected.dtype and got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, expected)


def test_has_nan_rows_only_looks_at_the_given_rows(small_blocks):
    array = np.zeros((30, 4), dtype=np.float32)
    array[17, 2] = np.nan
    assert R.has_nan_rows(array, np.arange(30))
    assert not R.has_nan_rows(array, np.setdiff1d(np.arange(30), [17]))


def _rss_file_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return float(line.split()[1]) / 1024.0
    return float("nan")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_take_rows_hands_a_memory_map_back(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "BLOCK_BYTES", 4 << 20)
    path = tmp_path / "embeddings.npy"
    source = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(65536, 256))  # 64 MiB
    source[:] = np.arange(256, dtype=np.float32)
    source.flush()
    del source
    mapped = np.load(path, mmap_mode="r")
    before = _rss_file_mib()
    copy = R.take_rows(mapped, np.arange(0, 65536, 2))
    # every page of the file was read; at most about one block of them stays mapped in the process
    assert _rss_file_mib() - before < 16
    np.testing.assert_array_equal(copy[5], np.arange(256, dtype=np.float32))
    assert float(mapped[123, 7]) == 7.0  # the data is still there after the pages were handed back
    # a plain view of the map (np.asarray, a slice) hands its pages back too
    before = _rss_file_mib()
    total = sum(float(block[:, 0].sum()) for _, block in R.row_blocks(np.asarray(mapped)[::1]))
    assert total == 0.0 and _rss_file_mib() - before < 16


def test_row_source_reads_like_the_gathered_matrix(small_blocks):
    rng = np.random.default_rng(1)
    array = rng.random((50, 5)).astype(np.float32)
    rows = np.sort(rng.choice(50, 31, replace=False))
    source = R.RowSource(array, rows)
    assert source.shape == (31, 5)
    np.testing.assert_array_equal(source.take(np.array([3, 0, 30])), array[rows[[3, 0, 30]]])
    stacked = np.concatenate([block for _, block in source.blocks()])
    np.testing.assert_array_equal(stacked, array[rows])
    assert [start for start, _ in source.blocks()][:2] == [0, R.block_rows(array)]


@pytest.mark.parametrize("method", ["exact", "ivf", "hnsw"])
def test_knn_density_of_a_row_source_equals_the_array(small_blocks, method):
    rng = np.random.default_rng(2)
    array = (rng.standard_normal((300, 8)) + rng.integers(0, 4, 300)[:, None] * 3).astype(np.float32)
    rows = np.sort(rng.choice(300, 220, replace=False))
    plain = I.knn_density(array[rows], 5, method=method, seed=3)
    streamed = I.knn_density(R.RowSource(array, rows), 5, method=method, seed=3)
    np.testing.assert_array_equal(streamed, plain)


def _reference_top_k(scores, k, largest, index):
    key = -np.asarray(scores, dtype=np.float64) if largest else np.asarray(scores, dtype=np.float64)
    tie = np.arange(len(key)) if index is None else index
    return np.lexsort((tie, key))[: max(0, min(k, len(key)))]


def test_top_k_equals_a_full_sort_on_random_ties_and_infinities():
    rng = np.random.default_rng(3)
    for trial in range(1500):
        n = int(rng.integers(1, 2000))
        k = int(rng.integers(0, n + 3))
        kind = trial % 4
        if kind == 0:
            scores = rng.random(n)
        elif kind == 1:
            scores = rng.integers(0, 4, n).astype(np.float32)  # heavy ties, float32 input
        elif kind == 2:
            scores = np.sort(rng.random(n))  # sorted: the strided probe sees a skewed sample
        else:
            scores = np.where(rng.random(n) < 0.5, np.inf, -np.inf)
        largest = bool(rng.integers(2))
        index = None if rng.integers(2) else rng.permutation(10 * n)[:n]
        np.testing.assert_array_equal(
            top_k(scores, k, largest=largest, index=index), _reference_top_k(scores, k, largest, index)
        )


def test_top_k_refuses_nan_among_infinities():
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.array([np.inf, -np.inf, np.nan]), 1)


def test_lazy_kcenter_cut_off_matches_argpartition():
    rng = np.random.default_rng(4)
    for width in (1, 5, 64, 300):
        values = rng.integers(0, 50, 5000).astype(np.float32)
        top, outside = I._largest(values, width)
        assert top.size == width
        rest = np.ones(values.size, dtype=bool)
        rest[top] = False
        assert values[top].min() >= outside == values[rest].max()


@pytest.mark.parametrize("classes", [2, 10, 80])
def test_columnwise_least_confidence_and_margin_equal_the_float64_forms(classes):
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(classes), 3000).astype(np.float32)
    p[:40, 1] = p[:40, 0]  # tied top classes
    p64 = p.astype(np.float64)
    top2 = -np.partition(-p64, 1, axis=-1)[:, :2]
    np.testing.assert_array_equal(U.least_confidence(p), 1.0 - p64.max(axis=-1))
    np.testing.assert_array_equal(U.margin(p), top2[:, 0] - top2[:, 1])
    assert (U.margin(p)[:40][p[:40, 0] == p[:40].max(axis=1)] == 0).all()


def test_entropy_equals_its_plain_form_bit_for_bit():
    p = np.random.default_rng(9).dirichlet(np.ones(7), 2000)
    p[:5, 0], p[:5, 1] = 0.0, p[:5, 0] + p[:5, 1]  # zero probabilities contribute 0
    with np.errstate(divide="ignore", invalid="ignore"):
        plain = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)
    np.testing.assert_array_equal(U.entropy(p), plain)
    np.testing.assert_array_equal(U.entropy(p.astype(np.float32)), U.entropy(p.astype(np.float32).astype(np.float64)))


@pytest.mark.parametrize("multi_label", [False, True])
def test_contrastive_kl_of_neighbors_is_bit_identical(multi_label):
    rng = np.random.default_rng(6)
    if multi_label:
        probs, labeled = rng.random((900, 6)), rng.random((30, 6))
        labeled[0, 0], probs[3, 2] = 1.0, 0.0
    else:
        probs, labeled = rng.dirichlet(np.ones(6), 900), rng.dirichlet(np.ones(6), 30)
        labeled[0] = np.eye(6)[0]
    neighbors = rng.integers(0, 30, (900, 4))
    expected = G.contrastive_kl(probs, labeled[neighbors], multi_label=multi_label)
    got = G.contrastive_kl_of_neighbors(probs, labeled, neighbors, multi_label=multi_label, block_rows=128)
    np.testing.assert_array_equal(got, expected)


def test_badge_streams_float32_rows_with_the_same_picks(monkeypatch):
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.ones(5), 2000)
    embeddings = rng.standard_normal((2000, 24)).astype(np.float32)
    copied = GR.badge_select(probs, embeddings, 40, np.random.default_rng(8))
    monkeypatch.setattr(GR, "PRECISION_COPY_MAX_BYTES", 0)
    monkeypatch.setattr(GR, "_INNER_BLOCK_ROWS", 300)
    assert GR._embeddings_in(embeddings, np.dtype(np.float64)).dtype == np.float32  # no float64 copy
    streamed = GR.badge_select(probs, embeddings, 40, np.random.default_rng(8))
    np.testing.assert_array_equal(streamed, copied)
