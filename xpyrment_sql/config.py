"""A fleet's configuration file: every running experiment's design and checks, read from TOML.

::

    [defaults]                       # optional; every key an experiment may set, except id
    freq = "h"
    ratios = { control = 1, treatment = 1 }   # optional: also test experiments not listed below

    [[experiment]]
    id = "checkout-redesign"
    ratios = { control = 1, treatment = 1 }
    start = 2026-11-20               # a TOML date or datetime, or an ISO string; naive means UTC
    slack = "https://hooks.slack.com/services/..."

    [[experiment.guardrails]]        # one table per guardrail of the experiment above
    name = "Page latency"
    metric = "mean"
    value_col = "load_ms"
    max_allowed_change = 0.02
    direction = "increase"
    method = "ci"
    shutoff = true

An experiment's keys: ``id`` (required; a string or an integer, as the experiment column holds it),
``ratios`` (required unless ``[defaults]`` has them), ``control``, ``start`` and ``end`` (rows before
``start`` or at/after ``end`` are not the experiment's), the checks' settings (the fields of
:class:`~xpyrment_sql.settings.CheckSettings`: ``freq``, ``window``, ``srm_alpha``, ...) and alert
routes (``slack``, ``email``, ``webhook``: a URL or a list of them) and ``guardrails``: a list of
tables, each a :class:`~xpyrment_sql.checks.guardrails.GuardrailMetric` (``max_allowed_change``,
``direction``, ``method``, ``shutoff``) around a metric named by ``name`` and ``metric``: ``"mean"``
or ``"proportion"`` of ``value_col``, or ``"ratio"`` of ``numerator_col`` to ``denominator_col``.
Values set on an experiment replace ``[defaults]``' (routes add to them). The file is read with
the standard library's ``tomllib`` (``tomli`` on Python 3.10). Every mistake is a
:class:`ConfigError` naming the file, the experiment and the key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from xpyrment_sql.bins import as_utc
from xpyrment_sql.checks.guardrails import GuardrailMetric
from xpyrment_sql.checks.metrics import MeanMetric, Metric, ProportionMetric, RatioMetric
from xpyrment_sql.errors import ParameterError
from xpyrment_sql.settings import CheckSettings, Design

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SETTING_KEYS = tuple(field.name for field in dataclasses.fields(CheckSettings))
"""Check settings a config may set, by their ``CheckSettings`` names."""

ROUTE_KEYS = ("slack", "email", "webhook")
"""Alert routes: the dispatcher's ``register_slack``, ``register_email`` and ``register_custom``."""

DESIGN_KEYS = ("ratios", "control", "start", "end")
EXPERIMENT_KEYS = ("id", *DESIGN_KEYS, *SETTING_KEYS, *ROUTE_KEYS, "guardrails")
DEFAULT_KEYS = ("ratios", "control", *SETTING_KEYS, *ROUTE_KEYS, "guardrails")

METRICS: dict[str, tuple[type[Metric], tuple[str, ...]]] = {
    "mean": (MeanMetric, ("value_col",)),
    "proportion": (ProportionMetric, ("value_col",)),
    "ratio": (RatioMetric, ("numerator_col", "denominator_col")),
}
"""A guardrail's ``metric`` kinds: the metric class and the columns it names."""

GUARDRAIL_KEYS = ("max_allowed_change", "direction", "method", "shutoff")
"""A guardrail's keys besides ``name``, ``metric`` and the metric's columns."""


class ConfigError(ParameterError):
    """A config file that cannot be used: names the file, the experiment and the key."""


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment's design and checks.

    Attributes:
        id: The experiment's value in the experiment column (a string or an integer).
        design: Its designed split (and control arm).
        settings: How it is checked (bin size, levels, gates).
        start: Rows before this instant are not the experiment's (``None``: from the first row).
        end: Rows at or after this instant are not the experiment's (``None``: still running).
        routes: ``(kind, url)`` alert routes, kind one of :data:`ROUTE_KEYS`.
        guardrails: Metrics that must not move beyond their tolerated change.
    """

    id: str | int
    design: Design
    settings: CheckSettings
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    routes: tuple[tuple[str, str], ...] = ()
    guardrails: tuple[GuardrailMetric, ...] = ()


@dataclasses.dataclass(frozen=True)
class FleetConfig:
    """Every configured experiment, and how experiments seen only in the data are treated.

    Attributes:
        path: The file it was read from (named in errors).
        experiments: The configured experiments, in the file's order.
        default_settings: Settings of experiments not in the file.
        default_design: The split experiments not in the file are tested against, or ``None`` to only
            list them.
        default_routes: Alert routes of experiments not in the file.
        default_guardrails: Guardrails of experiments not in the file (checked when they are tested).
    """

    path: str
    experiments: tuple[ExperimentConfig, ...]
    default_settings: CheckSettings = dataclasses.field(default_factory=CheckSettings)
    default_design: Design | None = None
    default_routes: tuple[tuple[str, str], ...] = ()
    default_guardrails: tuple[GuardrailMetric, ...] = ()

    def for_unlisted(self, experiment: str | int) -> ExperimentConfig | None:
        """The configuration of an experiment seen in the data but not in the file (tested only when
        ``[defaults]`` gives ratios)."""
        if self.default_design is None:
            return None
        return ExperimentConfig(
            experiment,
            self.default_design,
            self.default_settings,
            routes=self.default_routes,
            guardrails=self.default_guardrails,
        )


def read_config(path: str | os.PathLike[str]) -> FleetConfig:
    """Read and validate a fleet's TOML config file.

    Raises:
        ConfigError: the file is missing or not TOML, a key is unknown, an id repeats, a value is
            invalid (naming the file, the experiment and the key).
    """
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {name!r} cannot be read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {name!r} is not valid TOML: {exc}") from None
    return parse_config(data, name)


def parse_config(data: Mapping[str, Any], path: str = "<config>") -> FleetConfig:
    """A :class:`FleetConfig` from an already parsed TOML document (see :func:`read_config`)."""
    _known(data, ("defaults", "experiment"), path, "the top level")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"{path}: [defaults] must be a table")
    _known(defaults, DEFAULT_KEYS, path, "[defaults]")
    where = f"{path}: [defaults]"
    default_settings = _settings(defaults, where)
    default_design = _design(defaults, where) if "ratios" in defaults else None
    default_routes = _routes(defaults, where)
    default_guardrails = _guardrails(defaults, where)
    listed = data.get("experiment", [])
    if not isinstance(listed, list) or not all(isinstance(e, Mapping) for e in listed):
        raise ConfigError(f"{path}: experiments are [[experiment]] tables")
    experiments: list[ExperimentConfig] = []
    seen: set[str | int] = set()
    for number, entry in enumerate(listed, start=1):
        experiment = _experiment(entry, defaults, default_routes, path, number)
        if experiment.id in seen:
            raise ConfigError(f"{path}: experiment id {experiment.id!r} is listed twice")
        seen.add(experiment.id)
        experiments.append(experiment)
    return FleetConfig(
        path, tuple(experiments), default_settings, default_design, default_routes, default_guardrails
    )


def _experiment(
    entry: Mapping[str, Any],
    defaults: Mapping[str, Any],
    default_routes: tuple[tuple[str, str], ...],
    path: str,
    number: int,
) -> ExperimentConfig:
    """One ``[[experiment]]`` table, with ``[defaults]`` filling what it does not set."""
    experiment_id = entry.get("id")
    if isinstance(experiment_id, bool) or not isinstance(experiment_id, (str, int)) or experiment_id == "":
        raise ConfigError(
            f"{path}: experiment #{number} needs an id, a string or an integer (got {experiment_id!r})"
        )
    where = f"{path}: experiment {experiment_id!r}"
    _known(entry, EXPERIMENT_KEYS, path, f"experiment {experiment_id!r}")
    merged = {**{k: v for k, v in defaults.items() if k not in ROUTE_KEYS}, **entry}
    if "ratios" not in merged:
        raise ConfigError(f"{where}: key 'ratios' is missing (and [defaults] has none)")
    start, end = _instant(entry, "start", where), _instant(entry, "end", where)
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"{where}: key 'end' ({end}) must come after 'start' ({start})")
    return ExperimentConfig(
        experiment_id,
        _design(merged, where),
        _settings(merged, where),
        start,
        end,
        default_routes + _routes(entry, where),
        _guardrails(merged, where),
    )


def _known(table: Mapping[str, Any], keys: tuple[str, ...], path: str, where: str) -> None:
    """Refuse keys a table may not hold, naming the first and what is allowed."""
    for key in table:
        if key not in keys:
            raise ConfigError(f"{path}: {where}: unknown key {key!r}; expected one of {', '.join(keys)}")


def _design(table: Mapping[str, Any], where: str) -> Design:
    """The designed split from ``ratios`` (a table variant -> ratio) and ``control``."""
    ratios = table["ratios"]
    if not isinstance(ratios, Mapping) or not ratios:
        raise ConfigError(f"{where}: key 'ratios' must be a table such as {{ control = 1, treatment = 1 }}")
    try:
        return Design(dict(ratios), table.get("control"))
    except ParameterError as exc:
        raise ConfigError(f"{where}: key 'ratios': {exc}") from None


def _settings(table: Mapping[str, Any], where: str) -> CheckSettings:
    """The check settings the table sets, the library's defaults for the rest."""
    chosen = {key: table[key] for key in SETTING_KEYS if key in table}
    try:
        return CheckSettings(**chosen)
    except (ParameterError, TypeError) as exc:
        keys = ", ".join(repr(key) for key in chosen) or "(none)"
        raise ConfigError(f"{where}: a setting among {keys}: {exc}") from None


def _routes(table: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    """``(kind, url)`` pairs from the ``slack``, ``email`` and ``webhook`` keys."""
    routes = []
    for kind in ROUTE_KEYS:
        value = table.get(kind, [])
        urls = [value] if isinstance(value, str) else value
        if not isinstance(urls, list) or not all(isinstance(url, str) and url for url in urls):
            raise ConfigError(f"{where}: key {kind!r} must be a URL or a list of URLs")
        routes += [(kind, url) for url in urls]
    return tuple(routes)


def _guardrails(table: Mapping[str, Any], where: str) -> tuple[GuardrailMetric, ...]:
    """The ``guardrails`` list: each table one guardrail around a mean, proportion or ratio metric."""
    listed = table.get("guardrails", [])
    if not isinstance(listed, list) or not all(isinstance(entry, Mapping) for entry in listed):
        raise ConfigError(f"{where}: key 'guardrails' must be a list of tables such as {_GUARDRAIL_EXAMPLE}")
    guardrails = [
        _guardrail(entry, f"{where}: guardrail #{number}") for number, entry in enumerate(listed, 1)
    ]
    names = [guardrail.metric.name for guardrail in guardrails]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{where}: key 'guardrails': the name(s) {repeated} are used more than once")
    return tuple(guardrails)


_GUARDRAIL_EXAMPLE = '{ name = "Latency", metric = "mean", value_col = "load_ms", max_allowed_change = 0.02 }'


def _guardrail(entry: Mapping[str, Any], where: str) -> GuardrailMetric:
    """One guardrail table: ``name``, ``metric`` (a key of :data:`METRICS`), its columns, and the
    :class:`GuardrailMetric` options."""
    kind = entry.get("metric")
    if kind not in METRICS:
        raise ConfigError(f"{where}: key 'metric' must be one of {', '.join(METRICS)} (got {kind!r})")
    metric_class, columns = METRICS[kind]
    allowed = ("name", "metric", *columns, *GUARDRAIL_KEYS)
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; a {kind} guardrail takes {', '.join(allowed)}")
    for key in ("name", *columns):
        if key not in entry:
            raise ConfigError(
                f"{where}: key {key!r} is missing; a {kind} guardrail needs name, {', '.join(columns)}"
            )
    try:
        metric = metric_class(entry["name"], *(entry[column] for column in columns))
        return GuardrailMetric(metric, **{key: entry[key] for key in GUARDRAIL_KEYS if key in entry})
    except ParameterError as exc:
        raise ConfigError(f"{where} ({entry['name']!r}): {exc}") from None


def _instant(table: Mapping[str, Any], key: str, where: str) -> pd.Timestamp | None:
    """``start``/``end`` as an aware UTC instant: a TOML date (midnight UTC) or datetime, or a string."""
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, (str, dt.datetime)):
        raise ConfigError(f"{where}: key {key!r} must be a date or a datetime, got {value!r}")
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: key {key!r} is not a date: {value!r}") from None
    if pd.isna(stamp):
        raise ConfigError(f"{where}: key {key!r} is not a date: {value!r}")
    return as_utc(stamp)
