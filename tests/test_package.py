"""The package root exports every error and every result record, and ships its type information."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import xpyrment_sql as xs
import xpyrment_sql.errors
import xpyrment_sql.results
from xpyrment_sql.errors import XpyrmentError
from xpyrment_sql.results import Result

ROOT = Path(__file__).resolve().parent.parent


def _classes(module: object, base: type) -> dict[str, type]:
    """The subclasses of ``base`` (itself included) defined in ``module``, by name."""
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, base) and value.__module__ == module.__name__
    }


def _result_records() -> dict[str, type]:
    """Every record defined in a module of :mod:`xpyrment_sql.results`, found by walking the package."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(xpyrment_sql.results.__path__, "xpyrment_sql.results."):
        found.update(_classes(importlib.import_module(info.name), Result))
    return found


def test_the_roots_all_is_sorted_and_resolves():
    assert xs.__all__ == sorted(xs.__all__)
    assert len(set(xs.__all__)) == len(xs.__all__)
    missing = [name for name in xs.__all__ if not hasattr(xs, name)]
    assert missing == []


def test_every_error_is_exported_at_the_root():
    errors = _classes(xpyrment_sql.errors, XpyrmentError)
    assert {"XpyrmentError", "BackendError", "ColumnError"} <= errors.keys()
    for name, cls in errors.items():
        assert name in xs.__all__, f"xpyrment_sql.errors.{name} is not in xpyrment_sql.__all__"
        assert getattr(xs, name) is cls


def test_every_result_record_is_in_results_all_and_exported_at_the_root():
    records = _result_records()
    assert {"Result", "TrafficMatrix", "TelemetryReport", "LiveSRMResult", "MetricsReport"} <= records.keys()
    for name, cls in records.items():
        assert name in xpyrment_sql.results.__all__, f"{cls.__module__}.{name} is not re-exported by results"
        assert getattr(xpyrment_sql.results, name) is cls
        assert name in xs.__all__, f"{name} is not in xpyrment_sql.__all__"
        assert getattr(xs, name) is cls


def test_results_all_is_sorted_and_resolves():
    names = xpyrment_sql.results.__all__
    assert names == sorted(names)
    assert all(hasattr(xpyrment_sql.results, name) for name in names)


ALLOWED = ("xpyrment_sql.results.", "xpyrment_sql.errors")
"""What a module of ``results/`` may import from the package."""


def test_results_modules_import_no_layer_above_them():
    """Records import only other ``results`` modules and ``errors`` (at any depth): no cycle can form.

    The package's ``__init__`` re-exports its modules, so a module importing ``xpyrment_sql.results``
    itself would be a cycle too.
    """
    package = Path(xpyrment_sql.results.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            outside = [m for m in modules if m.split(".")[0] == "xpyrment_sql" and not m.startswith(ALLOWED)]
            assert outside == [], f"{path.name} imports {outside}"


def test_the_package_is_typed():
    assert (Path(xs.__file__).parent / "py.typed").is_file()


def test_importing_every_module_has_no_side_effects(tmp_path):
    """Doctest collection imports every module: none may print, write a file or run a command."""
    script = (
        "import importlib, pkgutil, xpyrment_sql\n"
        "for info in pkgutil.walk_packages(xpyrment_sql.__path__, 'xpyrment_sql.'):\n"
        "    if info.name.rpartition('.')[2] != '__main__':\n"
        "        importlib.import_module(info.name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    assert list(tmp_path.iterdir()) == []


def test_doctest_collection_skips_the_command_line_entry_point():
    """``cli/__main__.py`` runs the command line when imported; pytest's doctest collection skips it."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    command.append("xpyrment_sql/cli")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: no doctest in cli/ yet
    assert "__main__" not in done.stdout
