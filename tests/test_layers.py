"""The layers, checked on the source: every import of every module, including those inside functions.

    birefnet/   model, weights, predictor, training   imports nothing of pipeline/ or workers/
    workers/    predictors placed on devices          imports birefnet/ only
    pipeline/   the video product                     imports birefnet/ and workers/
    run_pipeline.py  the command line                 imports any of the three

No product module imports ``tests`` or ``benchmarks``, and no two modules import each other, directly or
round a longer loop (a backend interface importing the backends that import it back). Ray is imported
only in ``workers/`` (placing predictors, and the trainer on Ray Train). Imports named by a string at run
time (``importlib``) are outside what this test reads.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("birefnet", "workers", "pipeline")
OWN = (*PRODUCT, "run_pipeline", "tests", "benchmarks")  # top-level names of this repository
ALLOWED = {  # layer -> the layers of this repository it may import
    "birefnet": {"birefnet"},
    "workers": {"birefnet", "workers"},
    "pipeline": {"birefnet", "workers", "pipeline"},
    "run_pipeline": {"birefnet", "workers", "pipeline"},
}
RAY_ALLOWED = ("workers/",)


def product_modules() -> list[Path]:
    files = [ROOT / "run_pipeline.py"]
    for package in PRODUCT:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the module ``name``."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # from . import a, b: each name may be a module
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations(path_label: str, source: str, name: str, is_package: bool) -> list[str]:
    layer = name.split(".")[0]
    problems = []
    for line, target in imported_modules(source, name, is_package):
        top = target.split(".")[0]
        where = f"{path_label}:{line} imports {target}"
        if top in OWN and top not in ALLOWED[layer]:
            problems.append(f"{where}: {layer} may import only {', '.join(sorted(ALLOWED[layer]))}")
        if top == "ray" and not path_label.startswith(RAY_ALLOWED):
            problems.append(f"{where}: ray is imported only in {', '.join(RAY_ALLOWED)}")
    return problems


def check(path: Path) -> list[str]:
    label = path.relative_to(ROOT).as_posix()
    return violations(label, path.read_text(), module_name(path), path.name == "__init__.py")


def test_every_module_keeps_to_its_layer():
    modules = product_modules()
    assert len(modules) > 50  # the walk found the product, not an empty folder
    problems = [problem for path in modules for problem in check(path)]
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def import_graph() -> dict[str, set[str]]:
    """Product module -> the product modules it imports (a name imported from a module counts as that module)."""
    paths = {module_name(path): path for path in product_modules()}
    graph = {}
    for name, path in paths.items():
        deps = set()
        for _, target in imported_modules(path.read_text(), name, path.name == "__init__.py"):
            while target and target not in paths:
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One loop of imports in ``graph``, as the modules along it, or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path = [start], {start}
        todo = [(start, iter(sorted(graph[start])))]
        while todo:
            node, children = todo[-1]
            child = next(children, None)
            if child is None:
                todo.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return path[path.index(child):] + [child]
            elif child not in done:
                todo.append((child, iter(sorted(graph[child]))))
                path.append(child)
                on_path.add(child)
    return None


def test_no_module_imports_itself_round_a_loop():
    assert import_cycle(import_graph()) is None


def test_the_loop_finder_finds_a_loop():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycle(graph) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


@pytest.mark.parametrize("label, source, name, expected", [
    ("birefnet/x.py", "def f():\n    from pipeline.frames import FrameBatch\n", "birefnet.x",
     "birefnet/x.py:2 imports pipeline.frames: birefnet may import only birefnet"),
    ("workers/x.py", "import pipeline.graph\n", "workers.x",
     "workers/x.py:1 imports pipeline.graph: workers may import only birefnet, workers"),
    ("birefnet/train/x.py", "from ..errors import UserError\nfrom . import scenes\n", "birefnet.train.x", None),
    ("pipeline/x.py", "import tests.clips\n", "pipeline.x",
     "pipeline/x.py:1 imports tests.clips: pipeline may import only birefnet, pipeline, workers"),
    ("pipeline/x.py", "class A:\n    def f(self):\n        import ray\n", "pipeline.x",
     "pipeline/x.py:3 imports ray: ray is imported only in workers/"),
    ("birefnet/train/x.py", "def f():\n    import ray.train\n", "birefnet.train.x",
     "birefnet/train/x.py:2 imports ray.train: ray is imported only in workers/"),
    ("workers/ray_train.py", "import ray.train\n", "workers.ray_train", None),
])
def test_the_walk_sees_imports_anywhere_and_resolves_relative_ones(label, source, name, expected):
    assert violations(label, source, name, False) == ([] if expected is None else [expected])


def test_relative_imports_resolve_against_their_package():
    source = "from . import scenes\nfrom ..errors import UserError\nfrom .data import to_tensors\n"
    assert [m for _, m in imported_modules(source, "birefnet.train.synthetic_data", False)] == [
        "birefnet.train.scenes", "birefnet.errors", "birefnet.train.data"]
    assert [m for _, m in imported_modules("from .errors import UserError\n", "birefnet", True)] == ["birefnet.errors"]
