"""What the benchmark scripts share: the command line they record and how they write their reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def command_line(script: str, argv: list[str] | None) -> str:
    """``python scripts/<script> <arguments>`` as the report records it."""
    return " ".join(["python", f"scripts/{script}", *(argv if argv is not None else sys.argv[1:])])


def emit(text: str, report: dict, output: Path | None, json_path: Path | None) -> None:
    """Print the Markdown report; write it to ``output`` and the raw results to ``json_path`` when given."""
    print(text)
    for path, content in ((output, text), (json_path, json.dumps(report, indent=1))):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content + "\n", encoding="utf-8")
