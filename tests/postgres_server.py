"""A real PostgreSQL server for the test session: initdb + pg_ctl in a temporary data directory.

The server listens on 127.0.0.1 only, logs every statement with the role that sent it (so tests can
prove the monitor's role never ran a ``CREATE``), and is stopped and deleted when the session ends.
PostgreSQL refuses to run as root; when the tests run as root, the server runs as the ``postgres``
user (or ``nobody``) through ``runuser``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found: run `bash scripts/install_os_packages.sh` "
    "as root, or install the Debian/Ubuntu package `postgresql`"
)
SUPERUSER = "xpyrment_admin"
DATABASE = "experiments"


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    """Where the running server is, and the superuser's credentials (for the fixture's own setup)."""

    port: int
    password: str
    log_path: Path
    host: str = "127.0.0.1"

    def url(self, user: str = SUPERUSER, password: str | None = None, database: str = DATABASE) -> str:
        """A ``postgres://`` URL for ``user`` (the superuser's password unless another is given)."""
        secret = urllib.parse.quote(self.password if password is None else password, safe="")
        return f"postgres://{user}:{secret}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = DATABASE):  # -> psycopg.Connection
        """A psycopg connection as the superuser, autocommitting."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname=database,
            autocommit=True,
        )

    def statements_by(self, role: str) -> list[str]:
        """Every statement the server logged for ``role`` (``log_statement = all``), prepared ones too."""
        prefix = f"[{role}] LOG:  "
        lines = self.log_path.read_text(errors="replace").splitlines()
        logged = (line[len(prefix) :] for line in lines if line.startswith(prefix))
        return [text for text in logged if text.startswith(("statement:", "execute "))]


def server_binaries() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's ``/usr/lib/postgresql/N/bin``."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return Path(versions[-1]).parent


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """Start a fresh server, create the ``experiments`` database, yield it, then stop and delete it."""
    binaries = server_binaries()
    as_user = _unprivileged_prefix()
    folder = Path(tempfile.mkdtemp(prefix="xpyrment-pg-"))
    data, log_path, pwfile = folder / "data", folder / "server.log", folder / "pwfile"
    password = secrets.token_urlsafe(16)
    pwfile.write_text(password + "\n")
    owner = _owner()
    if owner is not None:
        for path in (folder, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}"]
    initdb += ["--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"]
    options = " ".join(
        [
            f"-h 127.0.0.1 -p {port} -k {folder}",
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "-c log_statement=all -c log_line_prefix='[%u] '",
        ]
    )
    pg_ctl = [*as_user, str(binaries / "pg_ctl"), "-D", str(data)]
    try:
        _run([*as_user, *initdb], folder)
        _run([*pg_ctl, "-l", str(log_path), "-w", "-t", "60", "-o", options, "start"], folder)
        server = PostgresServer(port=port, password=password, log_path=log_path)
        with server.connect(database="postgres") as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, check=False, cwd=folder)
        shutil.rmtree(folder, ignore_errors=True)


def _owner() -> pwd.struct_passwd | None:
    """The unprivileged user the server runs as when the tests run as root, else ``None``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.fail("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def _unprivileged_prefix() -> list[str]:
    owner = _owner()
    if owner is None:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("running as root needs `runuser` (util-linux) to start PostgreSQL as another user")
    return [runuser, "-u", owner.pw_name, "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str], folder: Path) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=folder)
    if done.returncode != 0:
        pytest.fail(f"command failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}", pytrace=False)
