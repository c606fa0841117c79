"""Every option of every registered strategy is exercised by some test (scikit-activeml's
``test_param_test_availability`` idea).

The rule, read statically from the text of ``tests/*.py``: a (strategy, option) pair is
exercised when one top-level unit of a test module (a function with its decorators, a class,
or a module-level assignment) both

- names the strategy: its registered name as a string (``"kmeans"``, or ``name: kmeans`` in a
  YAML string) or its class name (``KMeansEmbedding``), and
- names the option: a keyword argument ``option=``, a string ``"option"`` (a dict key, a
  parametrize value) or ``option:`` inside a string (YAML, ``--strategy`` JSON).

Options of ``Strategy.__init__`` itself (``multi_label``) are every strategy's: they count as
exercised when the contract suite (``test_strategy_contract.py``) parametrizes them over every
registered strategy. This module itself is not scanned. There is no allow-list.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from lit_al.strategies import Strategy, registered_strategies
from lit_al.strategies.registry import _accepted_options

TESTS = Path(__file__).resolve().parent
THIS = Path(__file__).name
_YAML_KEY = re.compile(r"([A-Za-z_]\w*)\s*:")


def _scan(statement: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """(strings, identifiers, option-like keys) named anywhere inside one statement."""
    strings: set[str] = set()
    identifiers: set[str] = set()
    keys: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
            keys.add(node.value)
            keys.update(_YAML_KEY.findall(node.value))
        elif isinstance(node, ast.keyword) and node.arg:
            keys.add(node.arg)
        elif isinstance(node, ast.Name):
            identifiers.add(node.id)
        elif isinstance(node, ast.Attribute):
            identifiers.add(node.attr)
    return strings, identifiers, keys


def _units(sources: list[str]) -> list[tuple[set[str], set[str], set[str]]]:
    """``_scan`` of every top-level statement of every module text in ``sources``."""
    return [_scan(statement) for source in sources for statement in ast.parse(source).body]


def _exercised(units, name: str, cls: type, option: str) -> bool:
    return any(_names_strategy(strings, identifiers, name, cls) and option in keys for strings, identifiers, keys in units)


def _names_strategy(strings: set[str], identifiers: set[str], name: str, cls: type) -> bool:
    yaml_name = re.compile(rf"\bname:\s*['\"]?{re.escape(name)}\b")
    return name in strings or cls.__name__ in identifiers or any(yaml_name.search(s) for s in strings)


def test_every_strategy_option_is_exercised_by_some_test():
    # this module names strategies and options only to test the rule: it does not count
    units = _units([path.read_text(encoding="utf-8") for path in sorted(TESTS.glob("*.py")) if path.name != THIS])
    base_options = {p for p in inspect.signature(Strategy.__init__).parameters if p != "self"}
    contract = (TESTS / "test_strategy_contract.py").read_text(encoding="utf-8")
    assert "registered_strategies()" in contract, "the contract suite no longer runs over every registered strategy"
    for option in base_options:
        assert f'parametrize("{option}"' in contract, f"the contract suite no longer parametrizes {option!r}"
    missing = [
        f"{name}.{option}"
        for name, cls in registered_strategies().items()
        for option in sorted(_accepted_options(cls) - base_options)
        if not _exercised(units, name, cls, option)
    ]
    assert not missing, f"strategy options no test exercises: {missing}"


def test_the_rule_counts_a_keyword_a_dict_key_and_yaml_beside_the_strategy_name():
    units = _units([
        "def test_a():\n    get_strategy('kmeans', max_iter=3)\n"
        "def test_b():\n    run({'name': 'alps', 'n_init': 2})\n"
        "def test_c():\n    text = 'strategy:\\n  name: typiclust\\n  max_iter: 4\\n'\n"
        "def test_d():\n    KMeansEmbedding(early_stop_threshold=0.5)\n"
        "def test_e():\n    get_strategy('dal')\n"
        "def test_f():\n    other(candidate_ratio=2)\n"
    ])
    classes = registered_strategies()
    assert _exercised(units, "kmeans", classes["kmeans"], "max_iter")
    assert _exercised(units, "alps", classes["alps"], "n_init")
    assert _exercised(units, "typiclust", classes["typiclust"], "max_iter")
    assert _exercised(units, "kmeans", classes["kmeans"], "early_stop_threshold")
    assert not _exercised(units, "dal", classes["dal"], "candidate_ratio")  # named in another test only
    assert not _exercised(units, "alps", classes["alps"], "max_iter")
