"""What lint-imports does not check: no import cycle between any two modules of multiclass.
Its acyclic_siblings contract compares siblings, so it misses a package that imports its own
submodule which imports it back, and it skips the imports pyproject.toml still lets it ignore.
Also: the tracker interface imports without torch, since every tracker plug-in starts there."""

import ast
import subprocess
import sys
from importlib.util import resolve_name
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "multiclass"


def module_files() -> dict[str, Path]:
    """Every module of the package by its dotted name; a package by its __init__.py."""
    files = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported_modules(path: Path, module: str, files: dict[str, Path]) -> set[str]:
    """The package's modules that import statements anywhere in the file name, function bodies
    included: a lazy import closes a cycle as surely as one at the top, only later. `from a
    import b` imports the module a.b where there is one, else a (b is a name defined there)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_name("." * node.level + (node.module or ""), package)
            names.update(
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                for alias in node.names
            )
    return {name for name in names if name in files and name != module}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    files = module_files()
    return {module: imported_modules(path, module, files) for module, path in files.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def shortest_cycle(graph: dict[str, set[str]], start: str) -> list[str]:
    """start -> ... -> start by the fewest imports (breadth first)."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for nxt in sorted(graph[path[-1]]):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    return []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle for each group of modules that import each other, directly or not
    (a strongly connected component larger than one)."""
    reach = {module: reachable(graph, module) for module in graph}
    components = {
        frozenset({module} | {other for other in reach[module] if module in reach[other]})
        for module in graph
        if module in reach[module]
    }
    return [shortest_cycle(graph, min(component)) for component in sorted(components, key=min)]


def test_no_two_modules_import_each_other_even_through_others():
    found = cycles(import_graph())
    assert not found, "import cycles (break each where one import can go):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found
    )


def test_the_cycle_finder_sees_cycles_and_lazy_imports():
    """Guards the test above from passing because it sees nothing."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    imports = import_graph()
    assert "multiclass.comparing.sweep_figure" in imports["multiclass.comparing.sweep"]  # lazy
    assert "multiclass.errors" in imports["multiclass.validation"]


def test_the_tracker_interface_imports_without_torch():
    """A tracker plug-in, or a command that only names one, must not pay torch's import."""
    script = "import multiclass.tracking, sys; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
