"""CI runs exactly the README's test command (lint, types, tests); the OS package script is idempotent."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_command_exactly():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"Run the whole test suite.*?```bash\n(.+?)\n```", readme, re.DOTALL)
    assert command is not None
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == command[1]
    assert command[1].startswith("bash scripts/install_os_packages.sh && ")
    assert " && .venv/bin/ruff check . && .venv/bin/mypy && .venv/bin/python -m pytest" in command[1]
    assert "set -euo pipefail" in ci_lines


def test_the_install_script_does_nothing_when_everything_is_there(tmp_path):
    """Everything the tests need is installed here, so apt-get must not even be looked at."""
    calls = tmp_path / "calls"
    shim = tmp_path / "bin"
    shim.mkdir()
    for tool in ("apt-get", "apt-cache", "sudo"):
        (shim / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        (shim / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install_os_packages.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not calls.exists(), calls.read_text()
