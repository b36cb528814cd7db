"""The layering of docs/architecture.md holds: the import-linter contracts pass and catch a planted upward
import, a planted import of a task folder from outside the tasks and one task folder importing another; the
contracts name exactly the registered task folders; no code outside graftkit/tasks compares task names; and
the package has no import cycles (function-local imports included)."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run import-linter with the repo's contract over the graftkit package found under ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = ("import sys, graftkit; assert graftkit.__file__.startswith(sys.argv[1]), graftkit.__file__; "
            "from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[2]))")
    return subprocess.run([sys.executable, "-c", code, str(root), str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_contracts_are_kept():
    res = lint_imports(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 kept, 0 broken" in res.stdout


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    root.mkdir()
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(REPO / "graftkit", root / "graftkit", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize("module, planted, broken", [
    # the data layer reaching up into serve, even inside a function
    ("data/readers.py", "from graftkit.serve import app", "graftkit.data.readers -> graftkit.serve"),
    # cross-cutting code reaching into one task's folder instead of asking for a capability
    ("evaluate/robustness.py", "from graftkit.tasks.ner import trust", "graftkit.evaluate.robustness -> graftkit.tasks.ner"),
    # one task folder borrowing another's code instead of a shared block in tasks/common
    ("tasks/regression/metrics.py", "from graftkit.tasks.classification import config",
     "graftkit.tasks.regression.metrics -> graftkit.tasks.classification"),
])
def test_contracts_catch_a_planted_import(tmp_path, module, planted, broken):
    root = _copy(tmp_path)
    target = root / "graftkit" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef _planted():\n    {planted}\n", encoding="utf-8")
    res = lint_imports(root)
    assert res.returncode != 0
    assert "BROKEN" in res.stdout and broken in res.stdout


def _task_folders() -> set[str]:
    from graftkit.tasks import TASKS

    return {cls.__module__.split(".")[2] for cls in TASKS.classes()}


def test_contracts_name_exactly_the_registered_task_folders():
    contracts = {c["name"]: c for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
                 ["contracts"]}
    forbidden = next(c for c in contracts.values() if c["type"] == "forbidden")
    inside = next(c for c in contracts.values() if c.get("containers") == ["graftkit.tasks"])
    siblings = next(layer for layer in inside["layers"] if "|" in layer)
    assert {m.rsplit(".", 1)[1] for m in forbidden["forbidden_modules"]} == _task_folders()
    assert {m.strip() for m in siblings.split("|")} == _task_folders()


def test_no_code_outside_the_tasks_compares_task_names():
    names = set(_task_folders())
    found = []
    for f in (REPO / "graftkit").rglob("*.py"):
        if "tasks" in f.relative_to(REPO / "graftkit").parts[:1]:
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                consts = [c for s in sides for c in ([s] if isinstance(s, ast.Constant) else
                                                      getattr(s, "elts", []))]
                if any(isinstance(c, ast.Constant) and c.value in names for c in consts):
                    found.append(f"{f.relative_to(REPO)}:{node.lineno}")
    assert found == []


def _import_graph(package: Path) -> dict[str, set[str]]:
    """module → graftkit modules it imports anywhere in its file (``from a import b`` means a.b when b is a module)."""
    mods = {}
    for f in package.rglob("*.py"):
        parts = f.relative_to(package.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph = {m: set() for m in mods}
    for name, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                subs = {f"{node.module}.{a.name}" for a in node.names} & mods.keys()
                graph[name] |= subs | ({node.module} if len(subs) < len(node.names) else set())
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names}
        graph[name] = {m for m in graph[name] if m in mods and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on_stack.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(_import_graph(REPO / "graftkit")) == []


def test_cycle_finder_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_importing_the_plots_changes_no_matplotlib_state():
    code = ("import matplotlib; import graftkit.report.plots, graftkit.report.trust_plots; "
            "import sys; sys.exit(0 if matplotlib.get_backend() == 'svg' else 1)")
    res = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MPLBACKEND": "svg"}, timeout=120)
    assert res.returncode == 0
