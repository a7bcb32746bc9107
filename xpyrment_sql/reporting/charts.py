"""The traffic chart: four panels drawn from the bins x variants matrix alone (matplotlib, optional).

1. cumulative distinct units per variant (each unit once, at its first exposure);
2. each arm's share of the units first seen in each bin against its designed share, inside a band of
   +-3 binomial standard errors (see :mod:`xpyrment_sql.stats.shares`);
3. (unit, variant) pairs seen per bin (units summed over variants, the drop test's volume), with the
   complete bins the drop test flags marked (see :func:`xpyrment_sql.stats.anomaly.drop_flags`; the
   seasonal method by default);
4. the sequential SRM test after every bin on a log scale. With the change-point method (the
   default), its evidence ``R_t`` (:mod:`xpyrment_sql.stats.changepoint`) and the cumulative Bayes
   factor ``BF_t`` against the ``1/alpha`` line it alarms at, and the onset day it names once it
   crosses; with ``"anytime"``, the anytime-valid p-value ``min(1, min_{s<=t} 1/BF_s)`` against the
   ``alpha`` line (see :func:`xpyrment_sql.stats.srm.anytime_p_values`).

The bin still in progress at the evaluation instant (``TrafficMatrix.unfinished``) is shaded and
hatched on every panel and labelled "in progress": it holds part of its traffic, so it is drawn as a
grey marker off the volume line and never flagged as a drop.

Nothing here queries: every panel is a pure function of a :class:`TrafficMatrix` that a check already
fetched. matplotlib is imported only when a chart is drawn, and the figure is rendered by the Agg
canvas, never by an interactive backend. Names from the data go into labels with ``$`` escaped, so a
variant called ``$x$`` is not read as mathtext.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xpyrment_sql.bins import parse_freq
from xpyrment_sql.errors import DataError, ParameterError
from xpyrment_sql.results import TrafficMatrix
from xpyrment_sql.stats import anomaly
from xpyrment_sql.stats.changepoint import ChangePointSettings, changepoint_evidence, day_starts
from xpyrment_sql.stats.shares import observed_shares, share_band
from xpyrment_sql.stats.srm import (
    DEFAULT_CONCENTRATION,
    anytime_log_bayes_factors,
    anytime_p_values,
    check_alpha,
    check_concentration,
    expected_shares,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from xpyrment_sql.settings import Ratios

FORMATS = {".png": "png", ".svg": "svg"}
BAND_WIDTH = 3.0
"""Half-width of the share band, in binomial standard errors."""
IN_PROGRESS = "in progress"


def require_matplotlib() -> Any:
    """Import matplotlib (a dependency of xpyrment-sql), or say how to install it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "traffic charts need matplotlib, which xpyrment-sql depends on: pip install matplotlib"
        ) from exc
    return matplotlib


def check_figure_path(path: str | Path) -> str:
    """Return the image format (``png`` or ``svg``) that ``path``'s suffix names."""
    image_format = FORMATS.get(Path(path).suffix.lower())
    if image_format is None:
        raise ParameterError(
            f"path={str(path)!r} must end in .png or .svg (the image format is taken from the suffix)"
        )
    return image_format


def traffic_figure(
    matrix: TrafficMatrix,
    expected_ratios: Ratios | None = None,
    *,
    window: int = 7,
    z_threshold: float | None = None,
    drop_method: str = "seasonal",
    drop_threshold: float = 0.5,
    alpha: float = 0.01,
    concentration: float = DEFAULT_CONCENTRATION,
    sequential_method: str = "changepoint",
) -> Figure:
    """Draw the four traffic panels (see the module docstring) of ``matrix``.

    Args:
        matrix: The traffic matrix a check fetched (no query is sent here).
        expected_ratios: Designed ratios (list aligned with the sorted variants, or dict); default an
            equal split.
        window: Bins in the z-score drop test's baseline.
        z_threshold: z-score below ``-z_threshold`` flags a drop; ``None`` takes the method's default.
        drop_method: ``"seasonal"`` (each bin against the same bin in earlier cycles) or ``"zscore"``.
        drop_threshold: Relative drop flagged when the z-score baseline has no variance.
        alpha: Level of the sequential SRM test (panel 4's line at ``1/alpha``, or at ``alpha``).
        concentration: Prior weight of the anytime-valid test (the change-point's ``c0``).
        sequential_method: ``"changepoint"`` draws the change-point evidence ``R_t`` (the default);
            any other method the cumulative anytime-valid p-value.

    Returns:
        A matplotlib Figure attached to an Agg canvas.

    Raises:
        DataError: when the matrix has no bins or no variants (nothing to draw).
    """
    anomaly.check_drop_method(drop_method)
    alpha = check_alpha(alpha)
    concentration = check_concentration(concentration)
    if not matrix.variants or len(matrix.bins) == 0:
        raise DataError("the traffic matrix is empty: no exposures to chart")
    ratios = [1.0] * len(matrix.variants) if expected_ratios is None else expected_ratios
    shares = expected_shares(ratios, matrix.variants)
    totals = matrix.active.sum(axis=1)
    flags = anomaly.drop_flags(
        totals[: matrix.complete_bins],
        bin_seconds=parse_freq(matrix.freq).width,
        method=drop_method,
        window=window,
        z_threshold=z_threshold,
        drop_threshold=drop_threshold,
    )
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = _bin_times(matrix.bins)
    figure = Figure(figsize=(11, 11), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(4, 1, sharex=True)
    colors = [f"C{i}" for i in range(len(matrix.variants))]
    _cumulative_panel(axes[0], x, matrix, colors)
    _share_panel(axes[1], x, matrix, shares, colors)
    _volume_panel(axes[2], x, matrix, totals, flags, drop_method)
    _srm_panel(axes[3], x, matrix, shares, alpha, concentration, sequential_method == "changepoint")
    if matrix.unfinished:
        _shade_unfinished(axes, x[-1], parse_freq(matrix.freq).width)
    axes[3].set_xlabel(f"bin start ({matrix.freq} bins)")
    progress = f", the last {IN_PROGRESS}" if matrix.unfinished else ""
    figure.suptitle(
        f"Traffic by {label(matrix.variant_col)}: {len(matrix.bins)} bins of {matrix.freq}{progress}"
    )
    return figure


def label(name: Any) -> str:
    """A name from the data as literal label text (``$`` escaped, so it is never read as mathtext)."""
    return str(name).replace("$", r"\$")


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` as PNG or SVG, chosen by the suffix."""
    image_format = check_figure_path(path)
    target = Path(path)
    figure.savefig(target, format=image_format, dpi=110)
    return target


def figure_bytes(figure: Figure, image_format: str = "png") -> bytes:
    """The rendered figure as PNG or SVG bytes (for embedding in a report)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


def traffic_png(
    matrix: TrafficMatrix,
    expected_ratios: Ratios,
    *,
    window: int = 7,
    z_threshold: float | None = None,
    drop_method: str = "seasonal",
    alpha: float = 0.01,
    concentration: float = DEFAULT_CONCENTRATION,
    sequential_method: str = "changepoint",
) -> tuple[bytes | None, str]:
    """The report's chart of ``matrix`` as PNG bytes with ``""``, or ``None`` with the reason there is none.

    A report is still worth writing without its chart: a log with no exposures, or a Python without
    matplotlib, gives a sentence the report shows in the chart's place instead of an error. The
    arguments are those of :func:`traffic_figure`.
    """
    if not matrix.variants:
        return None, "No exposures: nothing to chart."
    try:
        figure = traffic_figure(
            matrix,
            expected_ratios,
            window=window,
            z_threshold=z_threshold,
            drop_method=drop_method,
            alpha=alpha,
            concentration=concentration,
            sequential_method=sequential_method,
        )
    except ImportError as exc:
        return None, f"No chart: {exc}."
    return figure_bytes(figure, "png"), ""


def _bin_times(bins: pd.DatetimeIndex) -> np.ndarray:
    """Bin starts as naive datetimes in the bins' own zone (local labels for local bins)."""
    naive = bins.tz_localize(None) if bins.tz is not None else bins
    return naive.to_pydatetime()


def _cumulative_panel(ax: Any, x: np.ndarray, matrix: TrafficMatrix, colors: list[str]) -> None:
    cumulative = np.cumsum(matrix.new, axis=0)
    for i, variant in enumerate(matrix.variants):
        ax.plot(x, cumulative[:, i], color=colors[i], label=label(variant))
    ax.set_title("Cumulative distinct units (each unit once, at its first exposure)")
    ax.set_ylabel("units")
    ax.legend(loc="upper left")


def _share_panel(
    ax: Any, x: np.ndarray, matrix: TrafficMatrix, shares: np.ndarray, colors: list[str]
) -> None:
    observed = observed_shares(matrix.new)
    lower, upper = share_band(shares, matrix.new.sum(axis=1), BAND_WIDTH)
    for i, variant in enumerate(matrix.variants):
        ax.fill_between(x, lower[:, i], upper[:, i], color=colors[i], alpha=0.18, linewidth=0)
        ax.axhline(shares[i], color=colors[i], linestyle="--", linewidth=1)
        ax.plot(x, observed[:, i], color=colors[i], label=f"{label(variant)} (expected {shares[i]:.1%})")
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 1.0))
    ax.set_title(f"Share of newly exposed units per bin, expected share +-{BAND_WIDTH:g} binomial SE")
    ax.set_ylabel("share")
    ax.legend(loc="upper left")


def _volume_panel(
    ax: Any, x: np.ndarray, matrix: TrafficMatrix, totals: np.ndarray, flags: np.ndarray, method: str
) -> None:
    """Complete bins as a line with the flagged drops; the unfinished bin as a grey hollow marker."""
    complete = matrix.complete_bins
    done_x, done = x[:complete], totals[:complete]
    ax.plot(done_x, done, color="0.3", label="(unit, variant) pairs seen in the bin")
    ax.scatter(
        done_x[flags], done[flags], color="red", marker="v", s=60, zorder=3,
        label=f"flagged drop ({method} test, complete bins only)",
    )  # fmt: skip
    if matrix.unfinished:
        ax.plot(
            x[-1:], totals[-1:], linestyle="none", marker="o", markerfacecolor="none", color="0.55",
            label=f"{IN_PROGRESS} (partial, not judged)",
        )  # fmt: skip
    ax.set_title("Units per bin summed over variants, drops flagged by the drop test")
    ax.set_ylabel("(unit, variant) pairs")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower left")


def _shade_unfinished(axes: Any, start: Any, width_seconds: int) -> None:
    """Hatch the bin in progress on every panel; the volume panel also says "in progress"."""
    for ax in axes:
        ax.axvspan(
            start, start + timedelta(seconds=width_seconds), facecolor="0.9", edgecolor="0.6",
            hatch="//", linewidth=0, zorder=0,
        )  # fmt: skip
    axes[2].annotate(
        IN_PROGRESS, xy=(start, 0), xytext=(0, 4), textcoords="offset points", color="0.35",
        fontsize=8, rotation=90, va="bottom", ha="right",
    )  # fmt: skip


def _srm_panel(
    ax: Any,
    x: np.ndarray,
    matrix: TrafficMatrix,
    shares: np.ndarray,
    alpha: float,
    concentration: float,
    changepoint: bool = False,
) -> None:
    log_bf = anytime_log_bayes_factors(np.cumsum(matrix.new, axis=0), shares, concentration)
    if changepoint:
        _evidence_panel(ax, x, matrix, shares, alpha, concentration, log_bf)
        return
    p_values = np.maximum(anytime_p_values(log_bf), np.finfo(float).tiny)
    ax.plot(x, p_values, color="C3", label="anytime-valid p-value (cumulative)")
    ax.axhline(alpha, color="black", linestyle=":", label=f"alpha = {alpha:g}")
    ax.set_yscale("log")
    ax.set_ylim(top=1.5, bottom=min(alpha / 10, float(p_values.min()) / 2))
    ax.set_title("Sequential SRM: anytime-valid p-value (Dirichlet-multinomial mixture)")
    ax.set_ylabel("p-value")
    ax.legend(loc="lower left")


def _evidence_panel(
    ax: Any,
    x: np.ndarray,
    matrix: TrafficMatrix,
    shares: np.ndarray,
    alpha: float,
    concentration: float,
    log_bf: np.ndarray,
) -> None:
    """``R_t`` and ``BF_t`` (e-values, clipped to the float range) against the alarm line ``1/alpha``,
    with the onset the mixture names at its first crossing."""
    settings = ChangePointSettings(cumulative_concentration=concentration)
    evidence = changepoint_evidence(matrix.new, shares, day_starts(matrix.bins), settings)
    ceiling = np.log(np.finfo(float).max) - 1.0
    floor = np.log(np.finfo(float).tiny)
    mixture = np.exp(np.clip(evidence.log_evidence, floor, ceiling))
    cumulative = np.exp(np.clip(log_bf, floor, ceiling))
    ax.plot(x, mixture, color="C4", label="change-point evidence R_t")
    ax.plot(x, cumulative, color="C3", label="cumulative Bayes factor BF_t (anytime test)")
    crossed = np.flatnonzero(evidence.log_evidence >= np.log(1.0 / alpha))
    if crossed.size:
        onset = x[int(evidence.onset_index[crossed[0]])]
        ax.axvline(onset, color="C4", linestyle="--", label="onset (most evidence at detection)")
    ax.axhline(1.0 / alpha, color="black", linestyle=":", label=f"1/alpha = {1.0 / alpha:g}")
    ax.set_yscale("log")
    lowest = float(min(mixture.min(), cumulative.min()))
    highest = float(max(mixture.max(), cumulative.max()))
    ax.set_ylim(bottom=min(0.1, lowest / 2), top=max(10.0 / alpha, highest * 2))
    ax.set_title("Sequential SRM: change-point evidence against 1/alpha (alarm when R_t crosses it)")
    ax.set_ylabel("evidence (e-value)")
    ax.legend(loc="upper left")
