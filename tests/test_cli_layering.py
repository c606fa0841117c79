"""Nothing imports the command line: config building lives in ``lit_al.config`` (shared with experiment)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lit_al"


def _imports(path: Path) -> set[str]:
    """Absolute names of the project modules ``path`` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = f"{base}.{node.module}" if base and node.module else base or node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_nothing_imports_the_cli():
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                 if p.name != "cli.py" and any(n == "lit_al.cli" or n.startswith("lit_al.cli.") for n in _imports(p))]
    assert offenders == []


def test_the_helper_sees_relative_imports():
    assert "lit_al.config" in _imports(PACKAGE / "experiment" / "pool_outputs.py")
    assert "lit_al.config.fit_parser" in _imports(PACKAGE / "cli.py")
