import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A tiny random BertModel with its tokenizer, written once per session (read-only for tests)."""
    from tiny import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_mlm(tmp_path_factory):
    """The same tiny BERT with a masked-LM head (ALPS surprisal)."""
    from tiny import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("mlm") / "tiny-mlm", mlm=True)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine they spin-wait."""
    from lit_al.functional.auxiliary import single_threaded

    with single_threaded():
        yield


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, tiny_bert):
    """A person's run whose round-0 batch waits (``annotate_runs.make_run``), built once per test module; and its gold labels."""
    from annotate_runs import make_run

    return make_run(tmp_path_factory.mktemp("person_run"), tiny_bert)


@pytest.fixture
def run(base_run, tmp_path):
    """A private copy of ``base_run`` for one test, with the gold labels."""
    from annotate_runs import copy_run

    run_dir, gold = base_run
    return copy_run(run_dir, tmp_path / "run"), gold
