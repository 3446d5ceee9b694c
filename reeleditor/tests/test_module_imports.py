"""The modules of each app import one another one way only: no cycles.

A cycle, even one closed by an import inside a function, makes it matter which module
loads first and blurs which module owns what (queueing and the task body once imported
each other). Read from the source, so an import that runs only in a rare branch counts.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "exports", "projects", "reeleditor", "syncstore")


def modules_of(app: str) -> set[str]:
    return {path.stem for path in (ROOT / app).glob("*.py")} - {"__init__"}


def imported_modules(app: str, name: str) -> set[str]:
    """The app's modules that module ``name`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse((ROOT / app / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is None:  # from . import a, b
                found |= {alias.name for alias in node.names}
            elif node.level == 1:  # from .a import b
                found.add(node.module.split(".")[0])
            elif node.module and node.module.startswith(f"{app}."):
                found.add(node.module.split(".")[1])
            elif node.module == app:  # from syncstore import a, b
                found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            prefix = f"{app}."
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(prefix)}
    return found & modules_of(app)


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


@pytest.mark.parametrize("app", APPS)
def test_no_module_of_an_app_imports_one_that_imports_it_back(app):
    modules = modules_of(app)
    graph = {name: imported_modules(app, name) for name in modules}
    cycles = [cycle for name in sorted(modules) if (cycle := cycle_from(name, graph))]
    assert cycles == [], [" -> ".join(cycle) for cycle in cycles]


def test_the_reader_sees_real_imports():
    assert imported_modules("exports", "queueing") >= {"runner", "tasks"}
    assert imported_modules("syncstore", "sync") >= {"leases", "retention", "keys"}
