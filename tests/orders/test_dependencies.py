"""orders never imports realtime, not even inside a function: realtime listens to orders' signals and registers
its presence reader (docs/architecture.md, "The delivery boundary")."""

from __future__ import annotations

import ast
from pathlib import Path

import orders
from orders import delivery

ORDERS = Path(orders.__file__).parent


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth: import statements and import_module/import_string calls."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "import_string", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def test_no_module_in_orders_imports_realtime() -> None:
    files = sorted(ORDERS.rglob("*.py"))
    assert ORDERS / "tasks.py" in files and ORDERS / "management" / "commands" / "seed_demo.py" in files
    offending = [
        f"{path.relative_to(ORDERS.parent)}:{line} imports {module}"
        for path in files
        for line, module in imported_modules(ast.parse(path.read_text(), filename=str(path)))
        if module == "realtime" or module.startswith("realtime.")
    ]
    assert offending == []


def test_the_walk_finds_an_import_hidden_in_a_function() -> None:
    source = "def f():\n    from realtime import push\n    import realtime.presence\n    import_module('realtime.x')\n"
    assert [module for _, module in imported_modules(ast.parse(source))] == [
        "realtime", "realtime.presence", "realtime.x"]


def test_realtime_registered_its_presence_reader_at_startup() -> None:
    from realtime.receivers import LivePresence

    assert isinstance(delivery.presence(), LivePresence)
