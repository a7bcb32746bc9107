"""Connection URLs: opening a warehouse table read-only, and keeping the URL's secrets out of output.

A URL (``postgres://user:password@host/db``) often carries credentials, so every message that names
one shows it through :func:`redact_url`. Connecting must create nothing on the user's side, which
some Ibis backends do unless told not to (see :func:`read_only_connect_options`).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import ibis
import ibis.expr.types as ir

from xpyrment_sql.errors import SourceError

_SECRET_PARAMETER = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` without its secrets, for messages: credentials never appear in output.

    The password in ``user:password@host`` and the value of every query parameter whose name looks
    like a secret (``password=``, ``token=``, ``private_key=``, ``credentials=``...) become ``***``.
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{name}=***" if _SECRET_PARAMETER.search(name) else f"{name}={value}" if sep else name
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    shown = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    return shown + (f"#{parts.fragment}" if parts.fragment else "")


def read_only_connect_options(url: str) -> dict[str, Any]:
    """Options for ``ibis.connect(url)`` that keep the connection from creating anything.

    DuckDB files open read-only. Ibis' Snowflake backend would otherwise create a database of UDFs
    (``ibis_udfs``) on first connect. Ibis' Databricks backend always runs ``CREATE VOLUME`` when it
    connects, so ``databricks://`` URLs are refused: read the table through Spark instead, or hand
    in an Ibis table from a connection you opened yourself.

    Raises:
        SourceError: for a ``databricks://`` URL.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "databricks":
        raise SourceError(
            f"{redact_url(url)}: Ibis' Databricks backend creates a volume when it connects, and this "
            "library only reads; pass ibis.pyspark.connect(spark).table(...) or a table of your own "
            "ibis.databricks.connect(...) instead"
        )
    if scheme == "duckdb":
        return {"read_only": True}
    if scheme == "snowflake":
        return {"create_object_udfs": False}
    return {}


def open_url(url: str, table: str | None) -> tuple[ir.Table, Any]:
    """The table named ``table`` (``schema.table`` accepted) at ``url``, and the backend connected to it.

    Raises:
        SourceError: no ``table``, the connection failed, or the table is not there; the message shows
        the URL without its secrets and the exception's type only (its text may repeat the URL).
    """
    shown = redact_url(url)
    if table is None:
        raise SourceError(f"a connection URL ({shown}) needs table= naming the table to monitor")
    options = read_only_connect_options(url)
    try:
        backend = ibis.connect(url, **options)
    except Exception as exc:
        raise SourceError(f"could not connect to {shown}: {type(exc).__name__}") from None
    database, _, name = table.rpartition(".")
    try:
        return backend.table(name, database=database or None), backend
    except Exception as exc:
        raise SourceError(f"table {table!r} was not found at {shown}: {type(exc).__name__}") from None
