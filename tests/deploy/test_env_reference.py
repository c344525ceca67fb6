"""docs/operations.md's environment reference lists every variable the code reads, with its real default.

The code is parsed, not imported: every `env_str/env_int/env_bool/env_list/env_secret/env_host_ports("NAME", …)`
and `os.environ.get("NAME", …)` in the app packages is a variable; a literal default must appear in its row.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("accounts", "config", "integrations", "orders", "realtime", "worker")
READERS = {"env_str", "env_int", "env_bool", "env_list", "env_secret", "env_host_ports"}
UNKNOWN = object()
# Read by the code for the test suite's own sake, never set in a deployment.
TEST_ONLY = {"TEST_DATABASE_NAME"}


def literal(node: ast.expr) -> object:
    """A default's value when it is a constant expression (`30 * 86400`), else UNKNOWN."""
    try:
        tree = ast.Expression(node)
        ast.fix_missing_locations(tree)
        if any(isinstance(child, ast.Name | ast.Call | ast.Attribute) for child in ast.walk(node)):
            return UNKNOWN
        return eval(compile(tree, "<default>", "eval"), {"__builtins__": {}})  # noqa: S307 - constants only
    except Exception:  # noqa: BLE001 - anything not constant has no literal default
        return UNKNOWN


def variables_read() -> dict[str, object]:
    """NAME -> its literal default (UNKNOWN when computed; "" when none is given)."""
    found: dict[str, object] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                    continue
                name = node.args[0].value
                if not (isinstance(name, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", name)):
                    continue
                function = node.func
                reader = isinstance(function, ast.Name) and function.id in READERS
                environ = (isinstance(function, ast.Attribute) and function.attr == "get"
                           and ast.unparse(function.value).endswith("environ"))
                if reader or environ:
                    default = literal(node.args[1]) if len(node.args) > 1 else ""
                    found.setdefault(name, default)
                    if isinstance(function, ast.Name) and function.id == "env_secret":
                        found.setdefault(f"{name}_FILE", "")  # the secret read from a file instead
    return found


def documented() -> dict[str, str]:
    """NAME -> its default cell, from the rows of the `variable | default | meaning` table."""
    text = (ROOT / "docs" / "operations.md").read_text()
    table = text.split("| variable | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        defaults = cells[1].split(" / ")
        for index, name in enumerate(names):
            rows[name] = defaults[index] if len(defaults) == len(names) else cells[1]
    return rows


def shows(cell: str, default: object) -> bool:
    if default == "":
        return any(word in cell for word in ("unset", "empty", "none"))
    if isinstance(default, bool):
        return f"`{str(default).lower()}`" in cell
    return f"`{default}`" in cell


def test_every_variable_the_code_reads_is_in_the_reference_with_its_real_default() -> None:
    read, docs = variables_read(), documented()
    assert len(read) > 60, "the parser found too few variables to be reading the settings"
    missing = sorted(set(read) - set(docs) - TEST_ONLY)
    assert not missing, f"read by the code, not in docs/operations.md's environment reference: {missing}"
    wrong = {name: (default, docs[name]) for name, default in read.items()
             if name in docs and default is not UNKNOWN and not shows(docs[name], default)}
    assert not wrong, f"documented default differs from the code's (code, docs): {wrong}"


def test_the_reference_lists_no_variable_the_code_does_not_read() -> None:
    read = variables_read()
    # Read by the container's entrypoint or uvicorn rather than by Python code of ours.
    elsewhere = {"FORWARDED_ALLOW_IPS"}
    stale = sorted(set(documented()) - set(read) - elsewhere)
    assert not stale, f"documented but read nowhere: {stale}"
