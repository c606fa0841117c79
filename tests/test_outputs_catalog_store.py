"""The output catalogue, typed options, shard stores and their gathering, sharded batches, Selection."""

from __future__ import annotations

import numpy as np
import pytest

from lit_al.data.tokens import LengthSortedBatches, PadCollator
from lit_al.errors import StrategyError
from lit_al.outputs.catalog import CATALOG, PredictionOptions, PredictionRequest, flagged
from lit_al.outputs.registry import computer, register_output
from lit_al.outputs.store import PoolOutputStore, gather_shards
from lit_al.strategies import Selection, Strategy, registered_strategies


def test_every_catalogued_output_has_a_computer_and_every_computer_is_catalogued():
    from lit_al.outputs.registry import _COMPUTERS

    assert all(callable(computer(name)) for name in CATALOG)
    assert set(_COMPUTERS) <= set(CATALOG)
    assert flagged("gradients") == {"egl_full", "egl_word", "alden_interpretation"}
    assert flagged("reference") == {"alden_interpretation"}
    assert flagged("sample_axis") == {"mc_probs"}


def test_registering_an_uncatalogued_output_fails():
    with pytest.raises(ValueError, match="not in lit_al.outputs.catalog"):
        register_output("no_such_output")


def test_a_strategy_needing_an_unknown_output_fails_at_class_creation():
    with pytest.raises(StrategyError, match="unknown output"):
        type("Broken", (Strategy,), {"needs": frozenset({"probz"})})


def test_every_registered_strategy_names_catalogued_outputs():
    for name, cls in registered_strategies().items():
        assert set(cls.needs) <= set(CATALOG), name


@pytest.mark.parametrize("options,fragment", [
    ({"mc_passes": 0}, "mc_passes"),
    ({"mc_passes": True}, "mc_passes"),
    ({"mc_scope": "encoder"}, "mc_scope"),
    ({"mc_consistent": 1}, "mc_consistent"),
    ({"attention_intra": "diag"}, "attention_intra"),
    ({"egl_norm": "l1"}, "egl_norm"),
    ({"egl_samples": 0}, "egl_samples"),
    ({"token_rate": 0.0}, "token_rate"),
    ({"max_length": 0}, "max_length"),
    ({"alden_interpretation": {"target": "all"}}, "alden target"),
    ({"alden_interpretation": {"colour": 1}}, "unknown option"),
    ({"mc_pases": 3}, "unknown prediction option"),
])
def test_prediction_options_are_validated_once_with_one_clear_line(options, fragment):
    with pytest.raises(StrategyError, match=fragment):
        PredictionRequest(frozenset({"probs"}), options)


def test_request_defaults_and_unknown_needs():
    request = PredictionRequest(frozenset({"mc_probs"}), {"mc_passes": 3})
    assert request.options == PredictionOptions(mc_passes=3)
    with pytest.raises(StrategyError, match="unknown output"):
        PredictionRequest(frozenset({"logits"}))


def test_shard_stores_gather_into_the_pool_store(tmp_path):
    rng = np.random.default_rng(0)
    n, rows = 23, np.array([1, 2, 3, 5, 8, 13, 21, 4, 7, 11])
    probs = rng.random((n, 3)).astype(np.float32)
    mc = rng.random((n, 4, 3)).astype(np.float32)
    shards = [np.sort(rows[0::2]), np.sort(rows[1::2])]
    for rank, shard in enumerate(shards):
        store = PoolOutputStore(n, tmp_path / f"rank_{rank}", rows=shard)
        for chunk in np.array_split(shard[::-1], 2):  # any order, any batch split
            store.write("probs", chunk, probs[chunk])
            store.write("mc_probs", chunk, mc[chunk])
        store.flush()
    gathered = gather_shards([tmp_path / "rank_0", tmp_path / "rank_1"], n, tmp_path / "all").arrays()
    np.testing.assert_array_equal(gathered["probs"][rows], probs[rows])
    assert np.isnan(np.delete(gathered["probs"], rows, axis=0)).all()
    assert gathered["mc_probs"].shape == (4, n, 3)  # sample axis first
    np.testing.assert_array_equal(gathered["mc_probs"][:, rows], np.moveaxis(mc[rows], 0, 1))


def test_a_shard_store_refuses_rows_outside_its_shard():
    store = PoolOutputStore(10, rows=np.array([1, 4]))
    with pytest.raises(ValueError, match="outside"):
        store.write("probs", np.array([2]), np.ones((1, 2)))
    with pytest.raises(ValueError, match="ascending"):
        PoolOutputStore(10, rows=np.array([4, 1]))


@pytest.mark.parametrize("max_tokens", [None, 40])
@pytest.mark.parametrize("n,batch,world", [(0, 4, 2), (1, 4, 2), (17, 4, 2), (17, 4, 3), (16, 4, 2), (9, 16, 2)])
def test_sharded_batches_cover_every_row_once_and_keep_single_process_batches(n, batch, world, max_tokens):
    lengths = np.random.default_rng(n).integers(1, 30, size=n)
    single = list(LengthSortedBatches(lengths, batch, max_tokens=max_tokens))
    shards = [LengthSortedBatches(lengths, batch, (rank, world), max_tokens) for rank in range(world)]
    seen = [b for shard in shards for b in shard]
    assert sorted(map(tuple, seen)) == sorted(map(tuple, single))  # the same batches, none twice
    assert sum(len(s) for s in shards) == len(single)
    positions = np.concatenate([s.positions() for s in shards]) if n else np.empty(0)
    assert sorted(positions.tolist()) == list(range(n))


@pytest.mark.parametrize("n,batch,world", [(1, 4, 3), (5, 128, 2), (25, 128, 3), (9, 4, 3), (17, 4, 2)])
def test_evaluation_shards_give_every_process_a_batch_and_count_each_row_once(n, batch, world):
    lengths = np.random.default_rng(n).integers(1, 30, size=n)
    single = list(LengthSortedBatches(lengths, batch))
    shards = [LengthSortedBatches(lengths, batch, (rank, world), empty_when_idle=True) for rank in range(world)]
    dealt = [list(shard) for shard in shards]
    assert [len(shard) for shard in shards] == [len(d) for d in dealt] and min(map(len, dealt)) >= 1
    nonempty = [b for d in dealt for b in d if b]
    assert sorted(map(tuple, nonempty)) == sorted(map(tuple, single))  # a single process's batches, none twice
    assert all(d == [[]] for d in dealt if not any(d))  # an idle process: one empty batch, no padding rows
    assert sum(d == [[]] for d in dealt) == max(0, world - len(single))
    empty = PadCollator(0)([])
    assert empty["input_ids"].shape == (0, 0) and empty["pool_index"].shape == (0,)


def test_token_budget_batches_stay_under_it_and_fill_up_to_it():
    lengths = np.array([50, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 12, 12, 12, 120])
    batches = list(LengthSortedBatches(lengths, 8, max_tokens=36))
    assert batches[0] == [14] and batches[1] == [0]  # longer than the budget: a batch of its own
    assert [len(b) for b in batches] == [1, 1, 3, 8, 2]  # 3 × 12 tokens; then 8 rows (the row cap) of 3, then 2
    for rows in batches:
        assert len(rows) == 1 or len(rows) * lengths[rows].max() <= 36
    assert sorted(r for b in batches for r in b) == list(range(lengths.size))
    assert list(LengthSortedBatches(lengths, 4)) == list(LengthSortedBatches(lengths, 4, max_tokens=10**9))


def test_selection_fills_missing_scores_and_checks_their_length():
    selection = Selection(np.array([3, 1]))
    assert selection.indices.dtype == np.int64 and np.isnan(selection.scores).all() and len(selection) == 2
    with pytest.raises(ValueError, match="one score per pick"):
        Selection(np.array([3, 1]), np.array([0.5]))


def test_a_full_disk_is_an_oserror_not_a_sigbus(tmp_path, monkeypatch):
    import errno
    import os

    from lit_al.outputs import store as store_module

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "posix_fallocate", full)
    store = PoolOutputStore(10, tmp_path / "outputs")
    with pytest.raises(OSError) as raised:
        store.write("probs", np.arange(3), np.ones((3, 2), dtype=np.float32))
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.undo()
    reserved = PoolOutputStore(1000, tmp_path / "reserved")
    reserved.write("probs", np.arange(2), np.ones((2, 64), dtype=np.float32))
    stat = os.stat(tmp_path / "reserved" / "probs.npy")
    assert stat.st_blocks * 512 >= stat.st_size  # every block is allocated up front
