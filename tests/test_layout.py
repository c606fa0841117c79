"""The house reads one way: cli → (experiment) → loop → (scoring, model, data, strategies) → outputs → (functional, index).

Parses every module's imports (``ast``; imports inside functions and under ``if TYPE_CHECKING:``
count too: an annotation naming a higher floor's class is an arrow up as well) and checks the
floors, and that no two parts import each other, directly or around a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lit_al"

#: Floor of each top-level module or subpackage; a module may import only its own floor or lower ones.
FLOORS = {
    "errors": 0, "quiet": 0, "threads": 0, "run_lock": 0, "rundir": 0, "run_logger": 0, "seeding": 0, "atomic": 0, "hub": 0, "functional": 0, "index": 0, "rows": 0, "distributed": 0,
    "analysis": 0, "datasets": 0, "builtin": 0,
    "outputs": 1,
    "strategies": 2, "data": 2, "model": 2, "native_head": 2, "callbacks": 2, "oracle": 2,
    "scoring": 3, "round0": 3, "labeling": 3, "stopping": 3,
    "loop": 4,
    "config": 5, "session": 5, "overlap": 5, "product": 5, "experiment": 6, "annotate": 6, "integrations": 6,
    "cli": 7, "__main__": 7,
}
#: Top-level modules that are the command line's entry points (``python -m lit_al``): they may import it.
ENTRY_POINTS = {"__main__"}
#: Floors that import nothing of the project at all.
SELF_CONTAINED = {"functional", "index", "rows"}
#: What strategies may take from the outputs package: the torch-free catalogue only.
STRATEGY_OUTPUTS = {"lit_al.outputs.catalog", "lit_al.outputs"}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(module: str, path: Path) -> set[str]:
    """Every ``lit_al`` module named by an import in ``path`` (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "lit_al")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "lit_al":
                found.add(target)
                if node.level and not node.module:  # ``from . import x`` names submodules (not other names)
                    found.update(f"{target}.{alias.name}" for alias in node.names if _is_module(f"{target}.{alias.name}"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _floor_key(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = _modules()


def test_every_module_has_a_floor():
    missing = sorted({_floor_key(m) for m, _ in MODULES if m != "lit_al" and _floor_key(m) not in FLOORS})
    assert not missing, f"add these to FLOORS: {missing}"


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(module, path):
    if module == "lit_al":
        return
    key = _floor_key(module)
    imported = {m for m in _imports(module, path) if m != "lit_al"}
    own = {m for m in imported if _floor_key(m) == key}
    foreign = imported - own
    if key in SELF_CONTAINED:
        # block-wise reads of memory-mapped rows, the top-k cut-off, FAISS on first use: none imports the project either
        allowed = {"lit_al.rows", "lit_al.functional.ranking", "lit_al.functional.lazy"} if key == "index" else set()
        assert foreign <= allowed, f"{module} must import nothing of the project, imports {sorted(foreign - allowed)}"
    if key == "strategies":
        outputs = {m for m in foreign if _floor_key(m) == "outputs"}
        assert outputs <= STRATEGY_OUTPUTS, f"{module} imports output computers: {sorted(outputs - STRATEGY_OUTPUTS)}"
        assert not {m for m in foreign if _floor_key(m) in {"model", "scoring", "loop"}}
    if key == "outputs" and module.endswith((".catalog", ".plugin")):
        # the option choices come from functional, which loads torch lazily (tests/test_light_imports.py)
        allowed = {"lit_al.errors", "lit_al.outputs.catalog"} | {m for m in foreign if _floor_key(m) == "functional"}
        assert foreign <= allowed, f"the catalogue must stay torch-free and self-contained: {sorted(foreign)}"
    assert key in ENTRY_POINTS or not {m for m in foreign if _floor_key(m) == "cli"}, f"{module} imports cli"
    upward = sorted(m for m in foreign if FLOORS[_floor_key(m)] > FLOORS[key])
    assert not upward, f"{module} (floor {FLOORS[key]}) imports higher floors: {upward}"


def _part_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one part (Tarjan): each is a loop of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(part: str) -> None:
        index[part] = low[part] = len(index)
        stack.append(part)
        for other in sorted(edges.get(part, ())):
            if other not in index:
                visit(other)
                low[part] = min(low[part], low[other])
            elif other in stack:
                low[part] = min(low[part], index[other])
        if low[part] == index[part]:
            loop = []
            while not loop or loop[-1] != part:
                loop.append(stack.pop())
            if len(loop) > 1:
                loops.append(sorted(loop))

    for part in sorted(edges):
        if part not in index:
            visit(part)
    return loops


def test_no_import_circle_between_parts():
    """A part that imports another must not be imported back by it, not even around a loop through other
    parts or only for annotations (``model`` ↔ ``outputs`` was one: the classifier ran the output
    computers, which named the classifier)."""
    edges: dict[str, set[str]] = {}
    for module, path in MODULES:
        key = _floor_key(module)
        if key:
            edges.setdefault(key, set()).update(
                _floor_key(m) for m in _imports(module, path) if _floor_key(m) not in ("", key))
    assert not _part_cycles(edges), f"parts that import each other: {_part_cycles(edges)}"


def test_the_part_cycle_finder_finds_a_loop():
    assert _part_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _part_cycles({"a": {"b"}, "b": set()}) == []


def test_strategies_and_catalogue_import_without_lightning():
    import subprocess
    import sys

    code = (
        "import sys; import lit_al.strategies as s; s.registered_strategies(); "
        "import lit_al.outputs.catalog; "
        "bad = sorted(m for m in ('lightning', 'transformers') if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing strategies pulled in {out.stdout.strip()}"
