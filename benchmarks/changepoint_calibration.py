"""Calibration of the change-point SRM mixture against the cumulative anytime test, hourly looks.

Simulated experiments (numpy only, fixed seeds): two arms designed 50/50, 10,000 new units a day
with a daily cycle (the hourly rate follows ``1 + 0.5 sin(2 pi h / 24)``), each hour's new units a
Poisson draw split binomially; looked at after every hour. Healthy experiments run 30 and 90 days;
broken ones lose a share of treatment's new units from the start of an onset day (10% from day 10,
10% from day 20, 20% from day 20) or split 50/49 from day 1. Both tests see the same experiments and
the same hourly matrices the library's traffic matrix would give: the anytime test on the
cumulative units (:func:`xpyrment_sql.stats.srm.anytime_log_bayes_factors`, c = 10,000) and the
change-point mixture (:func:`xpyrment_sql.stats.changepoint.changepoint_evidence`, the library's
defaults), both at alpha = 0.01. The statistics come from ``xpyrment_sql.stats``, so this measures the
library's own code. Run through ``python -m benchmarks.calibration`` (``--only changepoint``).
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import time

import numpy as np

from xpyrment_sql.stats.changepoint import ChangePointSettings, changepoint_evidence
from xpyrment_sql.stats.srm import DEFAULT_CONCENTRATION, anytime_log_bayes_factors

HEADING = "# Calibration of the change-point SRM test"
ALPHA = 0.01
UNITS_PER_DAY = 10_000
HOURS = 24
DESIGN = np.array([0.5, 0.5])
ONSETS = (("onset day 10, 10% of treatment's new units lost", 10, 0.10, None),
          ("onset day 20, 10% lost", 20, 0.10, None),
          ("onset day 20, 20% lost", 20, 0.20, None),
          ("50/49 from day 1", 1, 0.0, np.array([50.0, 49.0]) / 99.0))  # fmt: skip
"""Broken scenarios: a label, the onset day, the share of treatment's new units lost, or a split."""
DEFAULTS = ChangePointSettings()
"""The library's tuning of the mixture (``w``, ``c0``, ``c1``, ``S``)."""


def hourly_new_units(
    rng: np.random.Generator,
    sims: int,
    days: int,
    onset_day: int = 1,
    loss: float = 0.0,
    split: np.ndarray = DESIGN,
) -> np.ndarray:
    """``sims x hours x 2`` new units per hour with the daily cycle: a Poisson total split by
    ``split``; from the start of ``onset_day`` treatment keeps each of its units with probability
    ``1 - loss``."""
    hours = np.arange(days * HOURS)
    rate = UNITS_PER_DAY / HOURS * (1.0 + 0.5 * np.sin(2.0 * np.pi * hours / HOURS))
    total = rng.poisson(rate, size=(sims, hours.size))
    assigned = rng.binomial(total, split[1])
    kept = np.broadcast_to(np.where(hours >= (onset_day - 1) * HOURS, 1.0 - loss, 1.0), assigned.shape)
    return np.stack([total - assigned, rng.binomial(assigned, kept)], axis=-1).astype(float)


def detection_hours(
    new: np.ndarray, settings: ChangePointSettings = DEFAULTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first hour (1-based, ``inf`` if never) each test's evidence reaches ``1/alpha`` (the
    change-point mixture's, the cumulative anytime test's), and the onset day (1-based, NaN if never)
    the mixture names at its crossing."""
    threshold = math.log(1.0 / ALPHA)
    starts = np.arange(0, new.shape[1], HOURS)
    evidence = changepoint_evidence(new, DESIGN, starts, settings)
    cumulative = anytime_log_bayes_factors(np.cumsum(new, axis=1), DESIGN, DEFAULT_CONCENTRATION)
    crossed = evidence.log_evidence >= threshold
    mixture = _first(crossed)
    named = np.take_along_axis(evidence.onset_index, crossed.argmax(axis=1)[:, None], axis=1)[:, 0]
    onset_day = np.where(np.isfinite(mixture), named // HOURS + 1.0, np.nan)
    return mixture, _first(cumulative >= threshold), onset_day


def _first(crossed: np.ndarray) -> np.ndarray:
    """Per experiment, the first hour (1-based) where ``crossed`` holds, ``inf`` if never."""
    return np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1.0, np.inf)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Detection hours of one test on one scenario's experiments (``inf``: never) and, for the
    mixture, the onset day it named (NaN: never detected)."""

    hours: np.ndarray
    onset_days: np.ndarray | None = None

    @property
    def rate(self) -> float:
        return float(np.isfinite(self.hours).mean())

    def error(self) -> float:
        return math.sqrt(self.rate * (1 - self.rate) / self.hours.size)

    def median_delay(self, onset_day: int) -> float:
        """Median days from the onset to detection (never counts as never)."""
        return float(np.median(self.hours / HOURS - (onset_day - 1)))

    def onset_named(self, onset_day: int, slack: int = 0) -> float:
        """Share of the detections naming a day within ``slack`` days of the true onset."""
        if self.onset_days is None or not np.isfinite(self.hours).any():
            return float("nan")
        named = self.onset_days[np.isfinite(self.hours)]
        return float((np.abs(named - onset_day) <= slack).mean())

    def interval(self, onset_day: int) -> tuple[float, float]:
        """A 95% interval for the median delay from order statistics."""
        delays = np.sort(self.hours / HOURS - (onset_day - 1))
        n = delays.size
        low = max(math.floor(n / 2 - 1.96 * math.sqrt(n) / 2), 0)
        high = min(math.ceil(n / 2 + 1.96 * math.sqrt(n) / 2), n - 1)
        return float(delays[low]), float(delays[high])


@dataclasses.dataclass(frozen=True)
class Study:
    """Healthy false-alarm rates (30 and 90 days) and broken detection delays, for both tests, and
    the mixture's delays with each tuning value changed in turn."""

    healthy: dict[int, tuple[Outcome, Outcome]]
    broken: list[tuple[str, int, Outcome, Outcome]]
    sensitivity: list[tuple[str, list[Outcome]]]
    sims: tuple[int, int, int, int]
    elapsed: float


def _outcomes(rng: np.random.Generator, sims: int, chunk: int, **scenario: object) -> tuple[Outcome, Outcome]:
    mixtures, cumulatives, onsets = [], [], []
    for start in range(0, sims, chunk):
        new = hourly_new_units(rng, min(chunk, sims - start), **scenario)  # type: ignore[arg-type]
        mixture, cumulative, onset = detection_hours(new)
        mixtures.append(mixture)
        cumulatives.append(cumulative)
        onsets.append(onset)
    return Outcome(np.concatenate(mixtures), np.concatenate(onsets)), Outcome(np.concatenate(cumulatives))


VARIANTS = (
    ("defaults", DEFAULTS),
    ("w = 0.5", ChangePointSettings(cumulative_weight=0.5)),
    ("w = 0.9", ChangePointSettings(cumulative_weight=0.9)),
    ("c0 = 5,000", ChangePointSettings(cumulative_concentration=5_000.0)),
    ("c0 = 20,000", ChangePointSettings(cumulative_concentration=20_000.0)),
    ("c1 = 300", ChangePointSettings(onset_concentration=300.0)),
    ("c1 = 3,000", ChangePointSettings(onset_concentration=3_000.0)),
    ("S = 30", ChangePointSettings(spread_days=30)),
    ("S = 120", ChangePointSettings(spread_days=120)),
)
"""The tuning checked one value at a time around the defaults (``w``, ``c0``, ``c1``, ``S``)."""

SENSITIVITY_SCENARIOS = (0, 1, 3)
"""The broken scenarios of :data:`ONSETS` the tuning is checked on: onset days 10 and 20 (10%), and
the mismatch from day 1 that the cumulative term must still catch."""


def _sensitivity(sims: int, chunk: int) -> list[tuple[str, list[Outcome]]]:
    """Each variant's detection hours on the same experiments (one seed per scenario)."""
    hours: dict[str, list[list[np.ndarray]]] = {name: [] for name, _ in VARIANTS}
    for number in SENSITIVITY_SCENARIOS:
        _, onset, loss, split = ONSETS[number]
        rng = np.random.default_rng(200 + number)
        found: dict[str, list[np.ndarray]] = {name: [] for name, _ in VARIANTS}
        for start in range(0, sims, chunk):
            new = hourly_new_units(
                rng, min(chunk, sims - start), 30, onset, loss, DESIGN if split is None else split
            )
            for name, settings in VARIANTS:
                found[name].append(detection_hours(new, settings)[0])
        for name in found:
            hours[name].append(found[name])
    return [(name, [Outcome(np.concatenate(chunks)) for chunks in hours[name]]) for name, _ in VARIANTS]


def run(
    healthy_sims: int = 2_000,
    long_sims: int = 1_000,
    broken_sims: int = 400,
    tuning_sims: int = 400,
    chunk: int = 100,
) -> Study:
    """Simulate every scenario (fixed seeds)."""
    clock = time.perf_counter()
    healthy = {
        30: _outcomes(np.random.default_rng(30), healthy_sims, chunk, days=30),
        90: _outcomes(np.random.default_rng(90), long_sims, chunk // 2, days=90),
    }
    broken = []
    for number, (label, onset, loss, split) in enumerate(ONSETS):
        rng = np.random.default_rng(100 + number)
        options: dict[str, object] = {"days": 30, "onset_day": onset, "loss": loss}
        if split is not None:
            options["split"] = split
        mixture, cumulative = _outcomes(rng, broken_sims, chunk, **options)
        broken.append((label, onset, mixture, cumulative))
    sensitivity = _sensitivity(tuning_sims, chunk)
    sims = (healthy_sims, long_sims, broken_sims, tuning_sims)
    return Study(healthy, broken, sensitivity, sims, time.perf_counter() - clock)


def _delay(outcome: Outcome, onset: int) -> str:
    median = outcome.median_delay(onset)
    if math.isinf(median):
        return "> 30 days (never)"
    low, high = outcome.interval(onset)
    shown_high = "never" if math.isinf(high) else f"{high:.1f}"
    return f"{median:.1f} [{low:.1f}, {shown_high}]"


def document(study: Study) -> list[str]:
    """The change-point section of CALIBRATION.md, every number taken from ``study``."""
    healthy_sims, long_sims, broken_sims, tuning_sims = study.sims
    settings = ChangePointSettings()
    lines = [
        HEADING,
        "",
        "Written by `python -m benchmarks.calibration --only changepoint` "
        f"(fixed seeds; {study.elapsed:.0f} s). "
        "Two arms designed 50/50, 10,000 new units a day with a daily cycle, looked at after every hour; "
        f"alpha = {ALPHA:g} for both tests. The change-point mixture uses the library's defaults: "
        f"w = {settings.cumulative_weight:g}, c0 = {settings.cumulative_concentration:,.0f}, "
        f"c1 = {settings.onset_concentration:,.0f}, S = {settings.spread_days} "
        "(`xpyrment_sql/stats/changepoint.py`); the anytime test c = 10,000. Rates are +- one Monte "
        "Carlo standard error.",
        "",
        "| healthy experiments | change-point mixture: false-positive rate "
        "| anytime (cumulative): false-positive rate |",
        "|---|---|---|",
    ]
    for days, sims in ((30, healthy_sims), (90, long_sims)):
        mixture, cumulative = study.healthy[days]
        lines.append(
            f"| {days} days, {days * HOURS:,} hourly looks ({sims:,} experiments) | "
            f"{mixture.rate:.4f} +- {mixture.error():.4f} | "
            f"{cumulative.rate:.4f} +- {cumulative.error():.4f} |"
        )
    lines += [
        "",
        f"Days from the onset to detection ({broken_sims:,} experiments each; median with a 95% interval "
        "from order statistics; never detected within 30 days counts as never):",
        "",
        "| broken experiments | change-point mixture | anytime (cumulative) "
        "| detected in 30 days (mixture / anytime) | onset day named: right / within a day |",
        "|---|---|---|---|---|",
    ]
    for label, onset, mixture, cumulative in study.broken:
        lines.append(
            f"| {label} | {_delay(mixture, onset)} | {_delay(cumulative, onset)} | "
            f"{mixture.rate:.3f} / {cumulative.rate:.3f} | "
            f"{mixture.onset_named(onset):.2f} / {mixture.onset_named(onset, 1):.2f} |"
        )
    lines += [
        "",
        "The onset day is the start carrying the most evidence when the mixture first crosses (the "
        "experiment's first day when the cumulative term does).",
        "",
        f"The tuning, one value changed at a time ({tuning_sims:,} other experiments per scenario, the same "
        "for every row): median days from the onset to detection.",
        "",
        "| mixture | " + " | ".join(study.broken[number][0] for number in SENSITIVITY_SCENARIOS) + " |",
        "|---|" + "---|" * len(SENSITIVITY_SCENARIOS),
    ]
    for name, outcomes in study.sensitivity:
        onsets = [study.broken[number][1] for number in SENSITIVITY_SCENARIOS]
        delays = " | ".join(
            f"{outcome.median_delay(onset):.2f}" for outcome, onset in zip(outcomes, onsets, strict=True)
        )
        lines.append(f"| {name} | {delays} |")
    return [*_wrapped(lines), "", *_choice(study)]


def _choice(study: Study) -> list[str]:
    """Why the default sequential method is what it is, from the numbers above."""
    level_kept = all(mixture.rate <= ALPHA for mixture, _ in study.healthy.values())
    late = [(m.median_delay(o), c.median_delay(o)) for _, o, m, c in study.broken if o > 1]
    faster = all(mine < theirs for mine, theirs in late)
    _, _, from_start, cumulative_start = study.broken[-1]
    verdict = (
        'So `sequential_method` defaults to `"changepoint"`; `"anytime"` (the cumulative test) and '
        '`"sprt"` (the seed\'s) stay available by name.'
        if level_kept and faster
        else 'So the default stays `"anytime"`: the mixture did not meet both conditions here.'
    )
    paragraph = (
        "## Choice of the default sequential method\n\n"
        f"The mixture keeps its false-positive rate at or below alpha under hourly looks for 30 and 90 days "
        f"({'yes' if level_kept else 'NO'}: it is a test martingale, so Ville's inequality bounds it for any "
        "horizon; its weights never drop a start, which a sliding window of the last S days would), and it "
        f"finds a break that starts on day 10 or 20 sooner than the cumulative test "
        f"({', '.join(f'{mine:.1f} vs {theirs:.1f} days' for mine, theirs in late)}). A mismatch present "
        f"from day 1 costs it {from_start.median_delay(1) - cumulative_start.median_delay(1):+.1f} days "
        f"({from_start.median_delay(1):.1f} vs {cumulative_start.median_delay(1):.1f}): three quarters "
        "of its weight bet on the cumulative term with the same prior. " + _tuning_sentence(study) + verdict
    )
    return _wrapped(paragraph.split("\n"))


def _tuning_sentence(study: Study) -> str:
    """How far changing one tuning value moves the median delays, from the tuning table."""
    onsets = [study.broken[number][1] for number in SENSITIVITY_SCENARIOS]
    delays = np.array(
        [
            [outcome.median_delay(day) for outcome, day in zip(outcomes, onsets, strict=True)]
            for _, outcomes in study.sensitivity
        ]
    )
    gains = delays[0] - delays[1:].min(axis=0)
    costs = delays[1:].max(axis=0) - delays[0]
    return (
        "Changing one of w, c0, c1, S at a time (the tuning table) shortens no median delay by more than "
        f"{gains.max():.2f} days and lengthens one by up to {costs.max():.2f}. "
    )


def _wrapped(lines: list[str]) -> list[str]:
    """Prose lines wrapped at 100 characters; table rows and headings kept whole."""
    out: list[str] = []
    for line in lines:
        if line.startswith(("|", "#")) or len(line) <= 100:
            out.append(line)
        else:
            out.extend(textwrap.wrap(line, 100, break_on_hyphens=False))
    return out
