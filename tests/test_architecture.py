"""The import rules of the house, read from the source with ast (tests/import_graph.py; nothing is imported).

- capture/ is a leaf: it imports nothing from pipeline/, web_ui/ or trayapp/, and the product ships no test harness.
- pipeline/text/ is text-and-time logic: it imports nothing of the house but the ground modules (errors, types,
  files, media) and itself.
- no import cycles among the modules of capture/, pipeline/, web_ui/, trayapp/ — every import counts, the ones
  inside functions too (KNOWN_CYCLES is empty: the house has none).
- a `weaver` command module (trayapp/cli_<area>.py) registers through trayapp.commands, never by importing
  trayapp.cli, and is listed in trayapp.cli.AREAS.
- the panel's create_app holds no API routes itself (they live in web_ui/routes_<area>.py).
"""

from __future__ import annotations

import ast
import re

import pytest

from tests.import_graph import ROOT, cycles, import_graph, outside_imports

# modules every layer may import (no house imports of their own beyond each other)
GROUND = {"pipeline.errors", "pipeline.types", "pipeline.files", "pipeline.media", "pipeline.vectors"}

# cycles still being broken elsewhere (empty: the house has none; a cycle found fails test_no_import_cycles_at_all)
KNOWN_CYCLES: list[set[str]] = []


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_capture_is_a_leaf(graph):
    assert outside_imports(graph, "capture") == {}
    assert not (ROOT / "capture" / "pulse_env.py").exists()  # the PulseAudio/Xvfb harness lives in tests/


def test_the_product_never_imports_the_tests():
    for pkg in ("capture", "pipeline", "trayapp", "web_ui"):
        for f in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                assert not any(n == "tests" or n.startswith("tests.") for n in names), f


def test_text_is_pure(graph):
    for m, deps in graph.items():
        if m == "pipeline.text" or m.startswith("pipeline.text."):
            outside = {d for d in deps if d != "pipeline.text" and not d.startswith("pipeline.text.")}
            assert outside <= GROUND, (m, deps)


def test_no_new_import_cycles(graph):
    found = cycles(graph)
    new = [c for c in found if not any(set(c) <= known for known in KNOWN_CYCLES)]
    assert new == [], "new import cycles: " + "; ".join(" <-> ".join(c) for c in new)


def test_the_cycles_this_restructuring_broke_stay_broken(graph):
    broken = [{"pipeline.models", "pipeline.voices.orpheus"}, {"pipeline.models", "pipeline.voices.train"},
              {"trayapp.app", "trayapp.desktop"}, {"web_ui.routes_chat", "web_ui.server"}]
    for c in cycles(graph):
        for pair in broken:
            assert not pair <= set(c), c


def test_no_import_cycles_at_all(graph):
    assert cycles(graph) == []


def test_create_app_has_no_inline_api_routes():
    tree = ast.parse((ROOT / "web_ui" / "server.py").read_text())
    create_app = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "create_app")
    paths = [d.args[0].value for n in ast.walk(create_app) if isinstance(n, ast.FunctionDef) for d in n.decorator_list
             if isinstance(d, ast.Call) and d.args and isinstance(d.args[0], ast.Constant)]
    assert paths == ["/", "/static/{name:path}"]


def test_every_route_area_registers_routes(tmp_path):
    from web_ui.server import ROUTE_AREAS, create_app

    app = create_app(home=tmp_path, token="t")
    paths = {r.path for r in app.routes}
    for area in ROUTE_AREAS:
        mine = {n.args[0].value for n in ast.walk(ast.parse(open(area.__file__).read()))
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                and n.func.value.id == "app" and n.args and isinstance(n.args[0], ast.Constant)
                and isinstance(n.args[0].value, str)}
        assert mine and mine <= paths, area.__name__


def test_every_cli_module_is_listed_and_imports_only_the_registry(graph):
    from trayapp import cli

    modules = {m for m in graph if m.startswith("trayapp.cli_")}
    assert modules == {a.__name__ for a in cli.AREAS}
    for m in modules:
        assert "trayapp.cli" not in graph[m], m


SQL = re.compile(r"\b(SELECT\b.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\[?\w+\]?\s+SET|DELETE\s+FROM|"
                 r"CREATE\s+(TABLE|INDEX|VIRTUAL\s+TABLE|TRIGGER)|ALTER\s+TABLE|DROP\s+TABLE|PRAGMA\s+\w+)\b", re.S)


def _strings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):  # an f-string: its literal parts together
            yield node.lineno, " ".join(v.value for v in node.values if isinstance(v, ast.Constant))


def test_only_the_library_writes_sql():
    found = []
    for pkg in ("capture", "pipeline", "trayapp", "web_ui"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            if f.is_relative_to(ROOT / "pipeline" / "library"):
                continue
            tree = ast.parse(f.read_text())
            docs = {id(n.body[0].value) for n in ast.walk(tree)
                    if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
                    and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
            for node in ast.walk(tree):
                if id(node) in docs:
                    continue
                for line, text in _strings(node) if isinstance(node, (ast.Constant, ast.JoinedStr)) else ():
                    if SQL.search(text):
                        found.append(f"{f.relative_to(ROOT)}:{line}: {text[:60]!r}")
                # sqlite_utils' table access and a database's execute/query calls: the library's too
                if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "db" \
                        and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                    found.append(f"{f.relative_to(ROOT)}:{node.lineno}: db[...]")
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("execute", "executemany", "executescript", "query")
                        and isinstance(node.func.value, (ast.Name, ast.Attribute))
                        and (getattr(node.func.value, "id", None) or getattr(node.func.value, "attr", None)) in ("db", "conn")):
                    found.append(f"{f.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node.func)}(...)")
    assert found == [], "SQL outside pipeline/library/:\n" + "\n".join(found)
