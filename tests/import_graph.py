"""A tiny import-graph reader for the house's own packages (ast only, nothing is imported).

Every ``import`` counts, the ones inside functions too: a lazy import still ties two modules together, it only
moves the moment the cycle bites. ``python tests/import_graph.py`` prints the cycles and capture's outside imports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("capture", "pipeline", "trayapp", "web_ui")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the house's packages."""
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = f
    return mods


def _resolve(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".")
    base = base if is_pkg else base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The house modules that `module` imports (anywhere in the file)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def add(target: str) -> None:
        # the deepest house module that the dotted name names
        parts = target.split(".")
        while parts:
            cand = ".".join(parts)
            if cand in known:
                if cand != module:
                    found.add(cand)
                return
            parts.pop()

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_pkg, node.level, node.module)
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                add(sub if sub in known else target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = module_files(root)
    return {m: imports_of(m, f, known) for m, f in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted; sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def outside_imports(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """For each module of `package`, the house modules of other packages it imports."""
    res = {}
    for m, deps in graph.items():
        if m.split(".")[0] == package:
            other = {d for d in deps if d.split(".")[0] != package}
            if other:
                res[m] = other
    return res


if __name__ == "__main__":
    g = import_graph()
    for c in cycles(g):
        print("cycle:", " <-> ".join(c))
    for m, deps in sorted(outside_imports(g, "capture").items()):
        print(f"capture leaks: {m} -> {', '.join(sorted(deps))}")
