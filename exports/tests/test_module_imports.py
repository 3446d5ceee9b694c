"""The modules of the exports app import one another one way only: no cycles.

A cycle, even one closed by an import inside a function, makes it matter which module
loads first and blurs which module owns what (queueing and the task body once imported
each other). Read from the source, so an import that runs only in a rare branch counts.
"""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1]
MODULES = {path.stem for path in APP.glob("*.py")} - {"__init__"}


def imported_modules(name: str) -> set[str]:
    """The app's modules that module ``name`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse((APP / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is None:  # from . import a, b
                found |= {alias.name for alias in node.names}
            elif node.level == 1:  # from .a import b
                found.add(node.module.split(".")[0])
            elif node.module and node.module.startswith("exports."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("exports.")}
    return found & MODULES


def cycle_from(start: str, graph: dict) -> list[str] | None:
    path, seen = [start], set()

    def visit(name):
        for nxt in sorted(graph[name]):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                path.append(nxt)
                if found := visit(nxt):
                    return found
                path.pop()
        return None

    return visit(start)


def test_no_module_of_the_app_imports_one_that_imports_it_back():
    graph = {name: imported_modules(name) for name in MODULES}
    assert graph["queueing"] >= {"runner", "tasks"}  # the reader sees real imports
    cycles = [cycle for name in sorted(MODULES) if (cycle := cycle_from(name, graph))]
    assert cycles == [], [" -> ".join(cycle) for cycle in cycles]
