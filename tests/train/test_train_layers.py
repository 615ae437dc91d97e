"""odvgkit_train's modules form layers (no import cycle, lazy imports included), and the train CLI
only parses and prints: configs are built below it."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "odvgkit_train"
CLI = Path(__file__).resolve().parents[2] / "odvgkit" / "cli" / "train.py"


def _imports(path: Path, package: str) -> set[str]:
    """Every ``package.X`` module imported anywhere in the file (module level or inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == package and len(parts) > 1 and (PKG / f"{parts[1]}.py").is_file():
                out.add(parts[1])
    return out


def test_odvgkit_train_has_no_import_cycle() -> None:
    graph = {p.stem: _imports(p, "odvgkit_train") - {p.stem} for p in PKG.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert "api" not in graph["inference"] | graph["evaluation"]  # the modules the API wraps never import it


def test_train_cli_builds_no_config() -> None:
    """The CLI hands options to odvgkit_train.plan; config building and the run live below it."""
    used = _imports(CLI, "odvgkit_train")
    assert "plan" in used and not used & {"config", "presets", "launch", "data"}
    text = CLI.read_text(encoding="utf-8")
    assert "build_config" not in text and 'cfg["' not in text
