"""reporting/ renders records and sends no query: none of its modules imports a layer that can send one."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

import xpyrment_sql.reporting

QUERYING_LAYERS = ("ibis", "xpyrment_sql.monitor", "xpyrment_sql.checks", "xpyrment_sql.queries",
                   "xpyrment_sql.source")  # fmt: skip
"""The query engine, and every layer of the package that builds, sends or opens what a query reads."""

PACKAGE = Path(xpyrment_sql.reporting.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` imports, at any depth (under ``TYPE_CHECKING`` or in a function too).

    ``from a import b`` counts as ``a`` and ``a.b`` (``b`` may be a module); relative imports are
    resolved against ``package``, the package the source's module is in.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = importlib.util.resolve_name("." * node.level + base, package).rstrip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def querying(modules: set[str]) -> list[str]:
    """The modules among ``modules`` that belong to a layer of :data:`QUERYING_LAYERS`."""
    return sorted(
        m for m in modules if any(m == layer or m.startswith(f"{layer}.") for layer in QUERYING_LAYERS)
    )


def _package_of(path: Path) -> str:
    return ".".join(("xpyrment_sql", *path.relative_to(PACKAGE.parent).parent.parts))


def test_every_reporting_module_is_checked():
    stems = {path.stem for path in MODULES}
    assert stems >= {"__init__", "charts", "documents", "records", "sections", "text"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_reporting_module_imports_a_layer_that_sends_queries(path):
    found = imported_modules(path.read_text(encoding="utf-8"), _package_of(path))
    assert querying(found) == [], f"{path.name} imports a querying layer"


def test_the_import_reader_sees_every_form_of_import():
    source = (
        "from __future__ import annotations\nimport ibis\nfrom xpyrment_sql import monitor\n"
        "from ..checks import srm\nfrom . import text\nif TYPE_CHECKING:\n    import xpyrment_sql.source\n"
        "def f():\n    from xpyrment_sql.queries.log import check_name\n"
    )
    assert querying(imported_modules(source, "xpyrment_sql.reporting")) == [
        "ibis", "xpyrment_sql.checks", "xpyrment_sql.checks.srm", "xpyrment_sql.monitor",
        "xpyrment_sql.queries.log", "xpyrment_sql.queries.log.check_name", "xpyrment_sql.source",
    ]  # fmt: skip
