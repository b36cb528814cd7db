"""The layering of DESIGN.md holds: the import-linter contract passes, catches a planted upward import,
and the package has no import cycles (function-local imports included)."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run import-linter with the repo's contract over the graftkit package found under ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = ("import sys, graftkit; assert graftkit.__file__.startswith(sys.argv[1]), graftkit.__file__; "
            "from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[2]))")
    return subprocess.run([sys.executable, "-c", code, str(root), str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_layers_contract_is_kept():
    res = lint_imports(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 kept, 0 broken" in res.stdout


def test_contract_catches_an_upward_import(tmp_path):
    root = tmp_path / "copy"
    root.mkdir()
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(REPO / "graftkit", root / "graftkit", ignore=shutil.ignore_patterns("__pycache__"))
    readers = root / "graftkit" / "data" / "readers.py"
    readers.write_text(readers.read_text(encoding="utf-8") + "\n\ndef _planted():\n    from graftkit.serve import app\n",
                       encoding="utf-8")  # the data layer reaching up into serve, even inside a function
    res = lint_imports(root)
    assert res.returncode != 0
    assert "BROKEN" in res.stdout and "graftkit.data.readers -> graftkit.serve" in res.stdout


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
