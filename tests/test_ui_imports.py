"""The views under ui/ import each other without cycles (also counting imports inside functions),
so each can be read and loaded on its own; views talk through ui/state.py instead."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ui_import_graph() -> dict[str, set[str]]:
    modules = {f"ui.{p.stem}": p for p in (ROOT / "ui").glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            deps |= {n for n in names if n in modules and n != name}
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path (``[a, b, a]``), or ``[]``."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        for dep in sorted(graph[node]):
            if dep in path:
                return [*path[path.index(dep):], dep]
            if dep not in done:
                found = visit(dep, [*path, dep])
                if found:
                    return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start, [start])
        if found:
            return found
    return []


def test_find_cycle_sees_a_cycle_through_a_function_level_import():
    assert find_cycle({"ui.a": {"ui.b"}, "ui.b": {"ui.a"}, "ui.c": set()}) == ["ui.a", "ui.b", "ui.a"]
    assert find_cycle({"ui.a": {"ui.b"}, "ui.b": set()}) == []


def test_ui_modules_have_no_import_cycle():
    graph = ui_import_graph()
    assert {"ui.profile", "ui.subscriptions", "ui.state"} <= set(graph)
    assert find_cycle(graph) == []


def test_the_refresh_channel_depends_on_no_view():
    assert ui_import_graph()["ui.state"] == set()
