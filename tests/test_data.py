"""Readers, label schema, scenarios, label state, token cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lit_al.data import ActiveDataModule, InitialSet, LabelSchema, LabelState
from lit_al.data.readers import read_table
from lit_al.data.scenarios import draw_initial_set, keyword_hits
from lit_al.data.tokens import LengthSortedBatches, PadCollator, cached_tokenize
from lit_al.errors import ConfigError, DataError
from tiny import make_rows, write_csv, write_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def rows():
    return make_rows(20, seed=0)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_readers_agree(tmp_path, rows, fmt):
    frame = pd.DataFrame(rows)
    path = tmp_path / f"train.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    read = read_table(path)
    assert read[["id", "text", "label"]].astype(str).values.tolist() == frame.values.tolist()


def test_csv_keeps_na_like_text(tmp_path):
    path = write_csv(tmp_path / "t.csv", [{"id": "a", "text": "NA", "label": "x"}, {"id": "b", "text": "null", "label": "y"}])
    assert read_table(path)["text"].tolist() == ["NA", "null"]


def test_builtin_trec_and_label_file():
    data = ActiveDataModule(train="builtin:trec/train.csv", test="builtin:trec/test.csv")
    data.load()
    assert len(data.pool) == 4674 and len(data.test) == 500
    assert data.schema.names == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def test_one_vs_rest_and_positive_index():
    data = ActiveDataModule(train="builtin:trec/train.csv", target_label="LOC")
    data.load()
    assert data.schema.names == ("not_LOC", "LOC") and data.schema.positive_index == 1
    positives = sum(g == ("LOC",) for g in data.pool.gold)
    assert positives == 717  # shared/data/README: 717 gold positives in train
    assert data.task_info()["positive_index"] == 1


def test_multilabel_string_and_list(tmp_path):
    schema = LabelSchema(("a", "b", "c"), multi_label=True)
    assert schema.parse("a|c", "|", "x") == ("a", "c")
    assert schema.parse(["b"], "|", "x") == ("b",)
    assert schema.parse("", "|", "x") == ()
    np.testing.assert_array_equal(schema.encode(("a", "c")), [1, 0, 1])
    frame = pd.DataFrame({"id": ["1", "2"], "text": ["t1", "t2"], "labels": [["a", "b"], ["c"]]})
    frame.to_parquet(tmp_path / "ml.parquet")
    data = ActiveDataModule(train=str(tmp_path / "ml.parquet"), label_column="labels", multi_label=True)
    data.load()
    assert data.pool.gold == [("a", "b"), ("c",)]


def test_goemotions_reads_as_shipped():
    path = SHARED / "goemotions" / "dev.csv"
    if not path.exists():
        pytest.skip("shared data not present")
    data = ActiveDataModule(train=str(path), label_column="labels", multi_label=True, labels=str(SHARED / "goemotions" / "labels.txt"))
    data.load()
    assert len(data.schema.names) == 28 and len(data.pool) == 5426


def test_seeded_split_is_deterministic(tmp_path, rows):
    path = write_csv(tmp_path / "all.csv", make_rows(100, seed=4))
    a = ActiveDataModule(train=str(path), split={"dev": 0.1, "test": 0.2}, split_seed=1)
    b = ActiveDataModule(train=str(path), split={"dev": 0.1, "test": 0.2}, split_seed=1)
    a.load(), b.load()
    assert (len(a.pool), len(a.dev), len(a.test)) == (70, 10, 20)
    assert a.test.ids == b.test.ids and not set(a.test.ids) & set(a.pool.ids)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.__setitem__(3, {**r[3], "text": "  "}), r"line 5 of .*train.csv: empty text"),
        (lambda r: r.__setitem__(5, {**r[5], "label": "weather"}), r"line 7 of .*train.csv: label 'weather' is not in the label schema"),
        (lambda r: r.__setitem__(7, {**r[7], "id": r[2]["id"]}), r"line 9 of .*train.csv: duplicate id"),
    ],
)
def test_bad_rows_name_file_and_row(tmp_path, rows, mutate, message):
    mutate(rows)
    path = write_csv(tmp_path / "train.csv", rows)
    data = ActiveDataModule(train=str(path), labels=["sport", "money", "tech"])
    with pytest.raises(DataError, match=message):
        data.load()


def test_missing_file_and_column(tmp_path, rows):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        ActiveDataModule(train=str(tmp_path / "nope.csv")).load()
    path = write_csv(tmp_path / "t.csv", rows)
    with pytest.raises(DataError, match="missing column 'sentence'"):
        ActiveDataModule(train=str(path), text_column="sentence").load()


def test_keyword_query_on_trec_matches_the_shared_measurement():
    data = ActiveDataModule(train="builtin:trec/train.csv", target_label="LOC")
    data.load()
    hits = keyword_hits(data.pool.texts, "Where|countr.*|cit.*")
    assert hits.size == 482  # shared/data/README: 482 hits, 430 true positives
    assert sum(data.pool.gold[i] == ("LOC",) for i in hits) == 430
    rng = np.random.default_rng(0)
    seed = draw_initial_set(InitialSet("keyword_query", n=100, weak_negatives=100, query="Where|countr.*|cit.*"),
                            data.pool.texts, data.pool.gold, data.schema, rng)
    assert len(seed.indices) == 200 and len(set(seed.indices.tolist())) == 200
    assert seed.sources.count("seed") == 100 and seed.sources.count("weak_negative") == 100
    assert set(seed.indices[:100].tolist()) <= set(hits.tolist())
    assert all(label == ("not_LOC",) for label, s in zip(seed.labels, seed.sources) if s == "weak_negative")


def test_keyword_query_matching_nothing_is_an_error():
    with pytest.raises(DataError, match="matches no text"):
        keyword_hits(["a b", "c d"], "zzz")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        keyword_hits(["a"], "(")


def test_scenarios_random_per_class_positives():
    data = ActiveDataModule(train="builtin:trec/train.csv", target_label="LOC")
    data.load()
    rng = np.random.default_rng(1)
    pos = draw_initial_set(InitialSet("positives", n=100, weak_negatives=100), data.pool.texts, data.pool.gold, data.schema, rng)
    assert all(data.pool.gold[i] == ("LOC",) for i in pos.indices[:100])
    per = draw_initial_set(InitialSet("per_class", n=5), data.pool.texts, data.pool.gold, data.schema, rng)
    assert sorted(l[0] for l in per.labels) == ["LOC"] * 5 + ["not_LOC"] * 5
    none = draw_initial_set(InitialSet("none"), data.pool.texts, data.pool.gold, data.schema, rng)
    assert none.indices.size == 0
    multi = ActiveDataModule(train="builtin:trec/train.csv")
    multi.load()
    with pytest.raises(ConfigError, match="binary task"):
        draw_initial_set(InitialSet("positives", n=3), multi.pool.texts, multi.pool.gold, multi.schema, rng)


def test_label_state_round_trip_and_atomic_file(tmp_path):
    ids = [f"x{i}" for i in range(10)]
    state = LabelState(ids, tmp_path / "state.json")
    state.add([3, 1], [("a",), ("b",)], round=0, source="seed")
    state.add([7], [("a",)], round=1, source="person")
    state.add([8], [("b",)], round=2, source="oracle")
    state.completed_rounds = 2
    state.save()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    loaded = LabelState.load(tmp_path / "state.json", ids)
    assert loaded.records == state.records and loaded.completed_rounds == 2
    np.testing.assert_array_equal(loaded.labeled_indices(), [1, 3, 7, 8])
    dropped = loaded.drop_after(1)  # oracle labels of an unfinished round go, a person's never do
    assert [r.pool_index for r in dropped] == [8]
    with pytest.raises(DataError, match="already labeled"):
        loaded.add([3], [("a",)], round=3, source="oracle")
    with pytest.raises(DataError, match="does not match the pool"):
        LabelState.load(tmp_path / "state.json", [f"y{i}" for i in range(10)])


def test_token_cache_and_padding(tmp_path):
    from transformers import BertTokenizerFast

    from tiny import write_tiny_bert

    folder = write_tiny_bert(tmp_path / "bert")
    tokenizer = BertTokenizerFast.from_pretrained(folder)
    texts = ["ball goal", "the bank of the market today", "chip"]
    first = cached_tokenize(tokenizer, texts, 8, "k", tmp_path / "cache")
    second = cached_tokenize(tokenizer, texts, 8, "k", tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    np.testing.assert_array_equal(first.ids, second.ids)
    assert first.lengths.tolist() == [4, 8, 3]  # [CLS] ... [SEP], truncated at 8
    assert tokenizer.unk_token_id not in first.ids  # every word of these texts is in the tiny vocabulary
    batch = PadCollator(tokenizer.pad_token_id)([{"input_ids": first.row(i), "pool_index": i} for i in range(3)])
    assert batch["input_ids"].shape == (3, 8) and batch["attention_mask"].sum(1).tolist() == [4, 8, 3]
    assert list(LengthSortedBatches(first.lengths, 2)) == [[1, 0], [2]]


def test_data_module_end_to_end_loaders(tmp_path):
    from transformers import BertTokenizerFast

    from tiny import write_tiny_bert

    folder = write_tiny_bert(tmp_path / "bert")
    data = ActiveDataModule(train=str(write_dataset(tmp_path / "d") / "train.csv"), dev=str(tmp_path / "d" / "dev.csv"))
    data.load()
    data.tokenize(BertTokenizerFast.from_pretrained(folder), cache_dir=tmp_path / "cache")
    data.state = LabelState(data.pool.ids)
    data.state.add([0, 5], [data.pool.gold[0], data.pool.gold[5]], round=0, source="seed")
    batch = next(iter(data.train_dataloader()))
    assert sorted(batch["pool_index"].tolist()) == [0, 5] and batch["labels"].shape == (2, 3)
    seen = sorted(i for b in data.predict_loader(np.array([1, 2, 3])) for i in b["pool_index"].tolist())
    assert seen == [1, 2, 3]
    shards = [data.predict_loader(np.array([1, 2, 3, 4]), (rank, 2)) for rank in range(2)]
    assert sorted(i for loader in shards for b in loader for i in b["pool_index"].tolist()) == [1, 2, 3, 4]


def test_max_rows_samples_each_split_reproducibly(tmp_path):
    from lit_al.data.module import ActiveDataModule
    from tiny import write_dataset

    data = write_dataset(tmp_path / "d", n_pool=50, n_dev=20, n_test=20)

    def load(**kwargs):
        module = ActiveDataModule(train=str(data / "train.csv"), dev=str(data / "dev.csv"), test=str(data / "test.csv"), **kwargs)
        module.load()
        return module

    full, a, b = load(), load(max_rows={"train": 30, "test": 5}), load(max_rows={"train": 30, "test": 5})
    other = load(max_rows={"train": 30}, split_seed=1)
    assert (len(a.pool), len(a.dev), len(a.test)) == (30, 20, 5)
    assert a.pool.ids == b.pool.ids and a.test.ids == b.test.ids
    assert a.pool.ids != other.pool.ids
    assert set(a.pool.ids) <= set(full.pool.ids)
    assert [full.pool.ids.index(i) for i in a.pool.ids] == sorted(full.pool.ids.index(i) for i in a.pool.ids)  # file order kept
    assert a.pool.source != full.pool.source  # different token-cache key
    with pytest.raises(ConfigError, match="data.max_rows"):
        ActiveDataModule(train="x.csv", max_rows={"pool": 3})


def test_corrupt_token_cache_is_rebuilt(tmp_path, caplog):
    from transformers import BertTokenizerFast

    from tiny import write_tiny_bert

    tokenizer = BertTokenizerFast.from_pretrained(write_tiny_bert(tmp_path / "bert"))
    texts = ["ball goal", "chip"]
    first = cached_tokenize(tokenizer, texts, 8, "k", tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("*.npz")
    cache.write_bytes(cache.read_bytes()[:40])  # a kill mid-write by another writer, or a bad disk
    again = cached_tokenize(tokenizer, texts, 8, "k", tmp_path / "cache")
    np.testing.assert_array_equal(first.ids, again.ids)
    assert "is unreadable" in caplog.text and "rebuilding it" in caplog.text
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache.name]  # no temp file left
    np.testing.assert_array_equal(cached_tokenize(tokenizer, texts, 8, "k", tmp_path / "cache").offsets, first.offsets)


def _write(path: Path, rows: list[dict], fmt: str) -> Path:
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("fmt, unit", [("jsonl", "line"), ("parquet", "row")])
def test_labels_are_read_as_text_and_null_is_missing(tmp_path, fmt, unit):
    rows = [{"id": i, "text": f"ball goal {i}", "label": i % 2} for i in range(6)]
    path = _write(tmp_path / f"train.{fmt}", rows, fmt)
    data = ActiveDataModule(train=str(path))
    data.load()
    assert data.schema.names == ("0", "1") and data.pool.ids[:2] == ["0", "1"]  # never "1.0"
    rows[3]["label"] = None
    path = _write(tmp_path / f"null.{fmt}", rows, fmt)
    with pytest.raises(DataError, match=rf"^{unit} 4 of .*null.{fmt}: empty label$"):
        ActiveDataModule(train=str(path)).load()
    (tmp_path / "labels.txt").write_text("0\n1\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{unit} 4 of .*null.{fmt}: empty label$"):
        ActiveDataModule(train=str(path), labels=str(tmp_path / "labels.txt")).load()


def test_jsonl_line_numbers_count_blank_lines_and_name_bad_json(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"id": "a", "text": "ball", "label": "x"}\n\n{"id": "b", "text": "", "label": "y"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"^line 3 of .*train.jsonl: empty text; fill it, or set data.drop_empty_texts: true"):
        ActiveDataModule(train=str(path)).load()
    path.write_text('{"id": "a", "text": "ball", "label": "x"}\n{"id": "b", "text": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"^line 2 of .*train.jsonl: not valid JSON"):
        ActiveDataModule(train=str(path)).load()


def test_pool_subsample_is_seeded_per_round_and_validated():
    from lit_al.data.subsample import round_subsample_seed, subsample_pool
    from lit_al.seeding import derive_seed

    unlabeled = np.arange(1000)[::-1] * 3  # any order in, ascending out
    a = subsample_pool(unlabeled, 100, 5)
    assert a.size == 100 and np.unique(a).size == 100 and np.isin(a, unlabeled).all() and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, subsample_pool(unlabeled, 100, 5))
    assert not np.array_equal(a, subsample_pool(unlabeled, 100, 6))
    np.testing.assert_array_equal(subsample_pool(unlabeled, None, 5), np.sort(unlabeled))
    np.testing.assert_array_equal(subsample_pool(unlabeled, 5000, 5), np.sort(unlabeled))
    # every row equally likely: each of 1000 rows drawn 100 times in 1000 draws of 100
    counts = np.bincount(np.concatenate([subsample_pool(np.arange(1000), 100, s) for s in range(1000)]), minlength=1000)
    assert counts.min() > 60 and counts.max() < 140
    assert round_subsample_seed(0, 3) == derive_seed(0, 3, "pool_subsample") != round_subsample_seed(0, 4)

    data = ActiveDataModule(train="x.csv", pool_subsample=100)
    rows = data.rows_to_score(unlabeled, run_seed=0, round_index=3)
    np.testing.assert_array_equal(rows, subsample_pool(unlabeled, 100, derive_seed(0, 3, "pool_subsample")))
    assert not np.array_equal(rows, data.rows_to_score(unlabeled, run_seed=0, round_index=4))
    np.testing.assert_array_equal(ActiveDataModule(train="x.csv").rows_to_score(unlabeled, 0, 3), np.sort(unlabeled))
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ConfigError, match="data.pool_subsample"):
            ActiveDataModule(train="x.csv", pool_subsample=bad)


def test_eval_batch_tokens_reaches_the_pool_batches():
    data = ActiveDataModule(train="x.csv", eval_batch_size=8, eval_batch_tokens=30)
    data.pool = type("Pool", (), {"tokens": type("Tokens", (), {"lengths": np.array([10, 10, 10, 10, 5, 5])})()})()
    assert [len(b) for b in data.predict_batches(np.arange(6))] == [3, 3]
    for bad in (0, -1, 2.5, True, "512"):
        with pytest.raises(ConfigError, match="data.eval_batch_tokens"):
            ActiveDataModule(train="x.csv", eval_batch_tokens=bad)


def test_tokenize_texts_batches_agree_with_one_call(tiny_bert):
    from transformers import BertTokenizerFast

    from lit_al.data.tokens import tokenize_texts

    tokenizer = BertTokenizerFast.from_pretrained(tiny_bert)
    texts = ["ball goal", "the bank of the market today", "chip", "goal", "the market"] * 3
    whole = tokenize_texts(tokenizer, texts, 6, batch=100)
    split = tokenize_texts(tokenizer, texts, 6, batch=2)
    np.testing.assert_array_equal(whole.ids, split.ids)
    np.testing.assert_array_equal(whole.offsets, split.offsets)
    expected = tokenizer(texts, truncation=True, max_length=6)["input_ids"]
    assert [whole.row(i).tolist() for i in range(len(texts))] == expected
    assert whole.ids.dtype == np.int32 and tokenize_texts(tokenizer, [], 6).offsets.tolist() == [0]


# ---------------------------------------------------------------- files read right or refused (issue 24, section 2)
@pytest.mark.parametrize("name, content, message", [
    # one extra field: pandas made the first column the index and cut the text
    ("extra.csv", "id,text\nq1,hello, bank stock\n",
     r"^line 2 of .*extra.csv: 3 fields where the header has 2; a text that holds a comma \(','\) must be in double quotes$"),
    ("late_extra.csv", 'id,text\na,"one\ntwo"\nb,three, four\n', r"^line 4 of .*late_extra.csv: 3 fields"),
    ("semi_extra.csv", "id;text\na;x;y\n", r"^line 2 of .*semi_extra.csv: 3 fields .* semicolon \(';'\)"),
    ("open_quote.csv", 'id,text\na,"never closed\nb,x\n', r"^line 2 of .*open_quote.csv: a double quote opened in this row is never closed$"),
    ("stray_quote.csv", 'id,text\na,ok\nb,"ab"cd\n', r"^line 3 of .*stray_quote.csv: .*written twice"),
    ("twice.csv", "id,text,id\n1,x,2\n", r"^line 1 of .*twice.csv: column 'id' appears twice in the header$"),
    ("empty.csv", "", r"empty.csv: empty file \(no header line\)$"),
])
def test_malformed_csv_is_refused_with_its_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_a_csv_in_another_encoding_and_a_long_text(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("id;text\n1;café crème\n".encode("cp1252"))
    with pytest.raises(DataError, match=r"excel.csv: is not UTF-8 text; save it as UTF-8"):
        read_table(path)
    long = "word " * 60_000  # 300 KB: above the csv module's default field limit (128 KiB)
    path = write_csv(tmp_path / "long.csv", [{"id": "a", "text": long, "label": "x"}])
    assert read_table(path)["text"].tolist() == [long]


@pytest.mark.parametrize("content", [
    "id;text;label\na;hello, there;x\nb;\"two\nlines; here\";y\n",  # Excel in many locales
    "id|text|label\na|hello, there|x\nb|\"two\nlines| here\"|y\n",
    "id\ttext\tlabel\na\thello, there\tx\nb\t\"two\nlines\t here\"\ty\n",
])
def test_the_delimiter_is_detected_from_the_header(tmp_path, content):
    path = tmp_path / "data.csv"
    path.write_text(content, encoding="utf-8")
    frame = read_table(path)
    assert list(frame.columns) == ["id", "text", "label"]
    assert frame["text"].tolist()[0] == "hello, there" and frame.index.tolist() == [2, 3]
    assert frame["label"].tolist() == ["x", "y"]


def test_csv_lines_are_an_editors_after_multi_line_texts(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('id,text,label\na,"one\ntwo\nthree",sport\n\nb,fine,money\nc,,tech\n', encoding="utf-8")
    assert read_table(path).index.tolist() == [2, 6, 7]  # a starts on line 2, the blank line 5 is skipped
    with pytest.raises(DataError, match=r"^line 7 of .*train.csv: empty text"):
        ActiveDataModule(train=str(path), labels=["sport", "money", "tech"]).load()
    path.write_text('id,text,label\na,"one\ntwo",sport\nb,fine,weather\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"^line 4 of .*train.csv: label 'weather'"):
        ActiveDataModule(train=str(path), labels=["sport", "money", "tech"]).load()


def test_blank_texts_are_counted_and_can_be_dropped(tmp_path, rows, caplog):
    for i in (3, 6, 7, 9, 11, 12, 15):
        rows[i] = {**rows[i], "text": " " if i % 2 else ""}
    path = write_csv(tmp_path / "pool.csv", rows)
    with pytest.raises(DataError, match=r"^.*pool.csv: 7 rows with an empty text \(lines 5, 8, 9, 11, 13 and 2 more\); "
                                        r"fill them, or set data.drop_empty_texts: true"):
        ActiveDataModule(train=str(path)).load()
    data = ActiveDataModule(train=str(path), drop_empty_texts=True)
    with caplog.at_level("WARNING"):
        data.load()
    assert len(data.pool) == 13 and all(t.strip() for t in data.pool.texts)
    assert data.pool.positions[:4] == [2, 3, 4, 6]  # the kept rows keep their lines
    assert "left out 7 row(s) with an empty text (lines 5, 8, 9, 11, 13 and 2 more" in caplog.text
    from lit_al.data.files import DataFiles

    files = DataFiles.from_options({"train": str(path), "drop_empty_texts": True, "batch_size": 8})
    files.load()  # what lit_al label reads from the saved config: the same pool
    assert files.pool.ids == data.pool.ids


def test_describe_positions():
    from lit_al.data.readers import describe_positions

    assert describe_positions("line", [4]) == "line 4"
    assert describe_positions("row", [4, 9]) == "rows 4 and 9"
    assert describe_positions("line", [1, 2, 3, 4, 5, 6, 7]) == "lines 1, 2, 3, 4, 5 and 2 more"
