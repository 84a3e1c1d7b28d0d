"""The layout of the two packages: no import cycle (imports inside functions included), ``embeddings/`` never
imports ``jobs/``, the run loop and the executors sit above the stages, and every module imports on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jobs", "embeddings")


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the two packages under ``root``."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each module -> the modules of the two packages it imports anywhere in its code (``ast.walk`` reaches
    the imports deferred into functions, which run later but close a cycle all the same)."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1 packages
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from jobs import tables` imports the module jobs.tables; `from jobs.x import f`, jobs.x.
                targets += [f"{base}.{alias.name}" for alias in node.names] + [base]
        edges = set()
        for target in targets:
            # Importing a.b.c runs the packages a and a.b first: each known prefix is an edge.
            parts = target.split(".")
            edges |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules.keys()
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of imports (its first module repeated at the end), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for target in sorted(graph.get(name, ())):
            if cycle := visit(target, [*path, name]):
                return cycle
        done.add(name)
        return None

    return next((cycle for name in sorted(graph) if (cycle := visit(name, []))), None)


def test_no_import_cycle_in_either_package() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_embeddings_never_imports_jobs() -> None:
    upward = {
        name: sorted(t for t in targets if t.split(".")[0] == "jobs")
        for name, targets in import_graph().items()
    }
    assert {name: found for name, found in upward.items() if name.startswith("embeddings") and found} == {}


def test_the_run_loop_and_the_executors_sit_above_the_stages() -> None:
    graph = import_graph()
    importers = {target: {name for name, targets in graph.items() if target in targets} for target in graph}
    assert importers["jobs.cli"] == set()
    assert importers["jobs.pipeline"] <= {"jobs.cli"}
    assert importers["jobs.executors"] <= {"jobs.pipeline"}
    # An executor is handed what to run: it knows the base module and its own config section, no stage.
    assert {t for t in graph["jobs.executors"] if t.startswith("jobs.")} <= {"jobs.config", "jobs.parallel"}


def test_every_module_imports_on_its_own_in_any_order() -> None:
    names = sorted(module_names(ROOT))
    script = (
        "import importlib, sys\n"
        f"for name in {names + names[::-1]!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] in ('jobs', 'embeddings')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
