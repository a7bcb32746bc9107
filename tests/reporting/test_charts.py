"""The traffic chart: what each panel draws, checked from the Figure's artists against the raw log."""

from __future__ import annotations

import math
import sys

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from scipy import special

import xpyrment_sql as xs
from xpyrment_sql.errors import DataError, ParameterError
from xpyrment_sql.reporting.charts import figure_bytes, traffic_figure, traffic_png
from xpyrment_sql.results import TrafficMatrix
from xpyrment_sql.stats.anomaly import drop_flags
from xpyrment_sql.stats.shares import observed_shares, share_band
from xpyrment_sql.synthetic import write_exposure_log

DROP_AT = pd.Timestamp("2026-01-06 18:00:00")


@pytest.fixture(scope="module")
def outage_log(tmp_path_factory):
    """Two days, flat hourly traffic, treatment units lost from hour 12, 80% of rows lost from hour 42."""
    path = tmp_path_factory.mktemp("charts") / "outage.parquet"
    write_exposure_log(
        path, rows=60_000, days=2, rows_per_unit=1.5, diurnal=False, seed=3,
        srm={"arm": "treatment", "keep": 0.5, "after": 0.25},
        traffic_drop={"keep": 0.2, "after": str(DROP_AT)},
    )  # fmt: skip
    return str(path)


@pytest.fixture(scope="module")
def rows(outage_log):
    """The raw rows, read by the test to compute every panel independently."""
    frame = pd.read_parquet(outage_log)
    frame["bin"] = frame.ts.dt.floor("h")
    return frame


@pytest.fixture(scope="module")
def figure(outage_log):
    monitor = xs.LiveMonitor(outage_log, time_col="ts")
    return monitor.plot_traffic(
        freq="h", expected_ratios={"control": 1, "treatment": 1}, alpha=0.01, z_threshold=3.0
    )


def _times(values) -> pd.DatetimeIndex:
    """Bin starts from a line's x data (datetimes) or a scatter's offsets (matplotlib date numbers)."""
    array = np.asarray(values)
    numbers = array.astype(float) if array.dtype.kind == "f" else mdates.date2num(values)
    return pd.DatetimeIndex(mdates.num2date(numbers)).tz_localize(None).round("s")


def test_shares_by_hand():
    shares = observed_shares(np.array([[30, 70], [0, 0], [1, 3]]))
    np.testing.assert_allclose(shares[0], [0.3, 0.7])
    assert np.isnan(shares[1]).all()
    np.testing.assert_allclose(shares[2], [0.25, 0.75])


def test_band_is_three_binomial_standard_errors_by_hand():
    lower, upper = share_band(np.array([0.25, 0.75]), np.array([100, 0, 400]))
    # sqrt(0.25 * 0.75 / 100) = 0.0433013; 3 SE = 0.1299038. At n = 400 it halves: 0.0649519.
    np.testing.assert_allclose(lower[0], [0.25 - 0.1299038, 0.75 - 0.1299038], atol=1e-7)
    np.testing.assert_allclose(upper[2], [0.25 + 0.0649519, 0.75 + 0.0649519], atol=1e-7)
    assert np.isnan(lower[1]).all()
    assert np.isnan(upper[1]).all()
    lower, upper = share_band(np.array([0.5, 0.5]), np.array([10_000]), width=2)
    np.testing.assert_allclose(upper[0] - lower[0], [4 * 0.005, 4 * 0.005])


@pytest.mark.parametrize("width", [0, -1, math.inf, True])
def test_band_width_must_be_positive(width):
    with pytest.raises(ParameterError, match="width="):
        share_band(np.array([0.5, 0.5]), np.array([10]), width=width)


def test_drop_flags_give_each_bins_verdict_as_the_latest_by_hand():
    volumes = np.array([100, 102, 98, 100, 101, 99, 50, 100, 100, 100, 100, 100, 100, 100, 100, 10.0])
    flags = drop_flags(volumes, window=7, z_threshold=3.0)
    # bin 6: baseline 100,102,98,100,101,99 -> mean 100, sd sqrt(10/5) = 1.414; z = -35.4
    # bin 15: baseline seven 100s -> sd 0, fallback 10 < 100 * 0.5; bin 7: z = (100 - 92.86) / 18.9 > -3
    assert np.flatnonzero(flags).tolist() == [6, 15]
    assert not drop_flags(np.array([5.0, 0.0]), window=2).any(), "no baseline before three bins"


def test_panel_one_has_one_cumulative_line_per_variant_ending_at_distinct_units(figure, rows):
    cumulative = figure.axes[0]
    labels = [line.get_label() for line in cumulative.lines]
    assert labels == ["control", "treatment"]
    distinct = rows.groupby("variant").unit_id.nunique()
    first = rows.groupby(["variant", "unit_id"]).bin.min().reset_index()
    for line in cumulative.lines:
        variant = line.get_label()
        assert line.get_ydata()[-1] == distinct[variant]
        by_bin = first[first.variant == variant].groupby("bin").size().cumsum()
        drawn = pd.Series(line.get_ydata(), index=_times(line.get_xdata()))
        assert drawn.loc[by_bin.index].tolist() == by_bin.tolist()


def test_panel_two_draws_shares_of_new_units_and_the_band(figure, rows):
    panel = figure.axes[1]
    first = rows.groupby(["variant", "unit_id"]).bin.min().reset_index()
    new = first.groupby(["bin", "variant"]).size().unstack(fill_value=0)
    share = new["treatment"] / new.sum(axis=1)
    treatment = next(line for line in panel.lines if line.get_label().startswith("treatment"))
    drawn = pd.Series(treatment.get_ydata(), index=_times(treatment.get_xdata()))
    np.testing.assert_allclose(drawn.loc[share.index], share, rtol=1e-12)
    assert len(panel.collections) == 2, "one band per variant"
    band = panel.collections[1].get_paths()[0].vertices[:, 1]
    n_first = new.sum(axis=1).iloc[0]
    half = 3 * math.sqrt(0.25 / n_first)
    assert band.max() == pytest.approx(0.5 + max(3 * math.sqrt(0.25 / n) for n in new.sum(axis=1)))
    assert np.isclose(band, 0.5 + half, rtol=1e-12).any()
    assert np.isclose(band, 0.5 - half, rtol=1e-12).any()
    expected = [line for line in panel.lines if line.get_linestyle() == "--"]
    assert [line.get_ydata()[0] for line in expected] == [0.5, 0.5]
    assert share.iloc[-10:].mean() < 0.45, "the lost treatment units show as a lower share"


def test_panel_three_marks_the_planted_outage_on_complete_bins(figure, rows):
    panel = figure.axes[2]
    totals = rows.groupby("bin").unit_id.nunique()
    complete = totals.iloc[:-1]  # the log ends inside its last hour: that bin is in progress
    line = panel.lines[0]
    drawn = pd.Series(line.get_ydata(), index=_times(line.get_xdata()))
    assert drawn.tolist() == complete.tolist()
    flagged = _times(panel.collections[0].get_offsets()[:, 0])
    assert DROP_AT in flagged, "the first bin of the outage is flagged"
    seasonal = drop_flags(complete.to_numpy(), bin_seconds=3600, method="seasonal", z_threshold=3.0)
    assert list(flagged) == list(complete.index[seasonal]), "the seasonal test's flags, complete bins only"
    (partial,) = [line for line in panel.lines if line.get_label() == "in progress (partial, not judged)"]
    assert _times(partial.get_xdata()).tolist() == [totals.index[-1]]
    assert partial.get_ydata().tolist() == [totals.iloc[-1]]


def _flat_matrix(last: int, unfinished: bool) -> TrafficMatrix:
    """Three days of 100 units an hour per arm, then a last bin of ``last`` units per arm."""
    active = np.full((73, 2), 100)
    active[-1] = last
    bins = pd.date_range("2026-01-05", periods=73, freq="h", name="bin")
    return TrafficMatrix(bins, ("control", "treatment"), active, active, "h", unfinished=unfinished)


def test_the_bin_in_progress_is_hatched_on_every_panel_and_never_flagged():
    shown = traffic_figure(_flat_matrix(last=5, unfinished=True))
    last = pd.Timestamp("2026-01-08 00:00")
    for ax in shown.axes:
        hatched = [patch for patch in ax.patches if patch.get_hatch() == "//"]
        assert len(hatched) == 1, "the bin in progress is shaded"
        left = mdates.num2date(hatched[0].get_x()).replace(tzinfo=None)
        assert left == last
        assert hatched[0].get_width() == pytest.approx(1 / 24), "one hour wide"
    volume = shown.axes[2]
    assert len(volume.collections[0].get_offsets()) == 0, "a partial bin is not a drop"
    assert "in progress" in [text.get_text() for text in volume.texts]
    assert "the last in progress" in shown.get_suptitle()
    finished = traffic_figure(_flat_matrix(last=5, unfinished=False))
    flagged = _times(finished.axes[2].collections[0].get_offsets()[:, 0])
    assert list(flagged) == [last], "the same bin, once complete, is a drop"
    assert not any(patch.get_hatch() for ax in finished.axes for patch in ax.patches)


def test_names_from_the_data_are_drawn_literally():
    names = ("$\\notacommand{$", "c$x$")
    active = np.full((30, 2), 50)
    bins = pd.date_range("2026-01-05", periods=30, freq="D", name="bin")
    matrix = TrafficMatrix(bins, names, active, active, "D", variant_col="arm $a$")
    figure = traffic_figure(matrix)
    assert figure_bytes(figure, "png").startswith(b"\x89PNG"), "no mathtext error while drawing"
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["\\$\\notacommand{\\$", "c\\$x\\$"]


def test_panel_four_is_the_change_point_evidence_against_one_over_alpha_by_default(figure):
    panel = figure.axes[3]
    lines = {line.get_label(): line for line in panel.lines}
    assert panel.get_yscale() == "log"
    assert set(lines["1/alpha = 100"].get_ydata()) == {100.0}
    mixture = np.asarray(lines["change-point evidence R_t"].get_ydata())
    cumulative = np.asarray(lines["cumulative Bayes factor BF_t (anytime test)"].get_ydata())
    assert np.all(mixture >= 0.75 * cumulative * (1 - 1e-9)), "R_t >= w * BF_t bin by bin"
    assert mixture.max() >= 100, "the planted SRM crosses 1/alpha"
    crossing = _times(lines["change-point evidence R_t"].get_xdata())[int(np.argmax(mixture >= 100))]
    onset = _times(lines["onset (most evidence at detection)"].get_xdata())[0]
    assert onset <= crossing


def test_panel_four_is_the_anytime_p_value_on_a_log_scale_with_the_alpha_line(outage_log, rows):
    monitor = xs.LiveMonitor(outage_log, time_col="ts")
    panel = monitor.plot_traffic(
        freq="h", expected_ratios={"control": 1, "treatment": 1}, alpha=0.01, sequential_method="anytime"
    ).axes[3]
    assert panel.get_yscale() == "log"
    alpha_line = next(line for line in panel.lines if line.get_label() == "alpha = 0.01")
    assert set(alpha_line.get_ydata()) == {0.01}
    p_line = next(line for line in panel.lines if line.get_label() == "anytime-valid p-value (cumulative)")
    p = np.asarray(p_line.get_ydata())
    assert np.all(np.diff(p) <= 0), "the running minimum never rises"
    assert p[-1] < 0.01, "the planted SRM crosses alpha"
    n = rows.groupby("variant").unit_id.nunique().to_numpy(dtype=float)
    c, a = 10_000.0, 5_000.0
    log_bf = (
        special.gammaln(c) - special.gammaln(c + n.sum())
        + sum(special.gammaln(a + k) - special.gammaln(a) for k in n) - n.sum() * math.log(0.5)
    )  # fmt: skip
    assert p[-1] <= max(math.exp(-log_bf), np.finfo(float).tiny) * (1 + 1e-9)


def test_plot_traffic_runs_exactly_the_traffic_matrix_query(outage_log, query_log):
    monitor = xs.LiveMonitor(outage_log, time_col="ts")
    query_log.clear()
    monitor.traffic_matrix(freq="h")
    matrix_queries = list(query_log)
    query_log.clear()
    monitor.plot_traffic(freq="h")
    assert query_log == matrix_queries
    assert len(matrix_queries) == 1


def test_writes_png_and_svg_by_suffix(outage_log, tmp_path):
    monitor = xs.LiveMonitor(outage_log, time_col="ts")
    monitor.plot_traffic(freq="h", path=tmp_path / "traffic.png")
    monitor.plot_traffic(freq="h", path=str(tmp_path / "traffic.SVG"))
    assert (tmp_path / "traffic.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "<svg" in (tmp_path / "traffic.SVG").read_text()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"path": "traffic.jpg"}, "path='traffic.jpg' must end in .png or .svg"),
        ({"path": "traffic"}, "path='traffic' must end in .png or .svg"),
        ({"alpha": 2}, "alpha=2"),
        ({"window": 1}, "window=1"),
        ({"expected_ratios": [1, -1]}, "expected_ratios must be positive"),
    ],
)
def test_bad_chart_input_fails_before_any_query(log, query_log, kwargs, words):
    monitor = xs.LiveMonitor(log, time_col="ts")
    query_log.clear()
    with pytest.raises(ParameterError) as info:
        monitor.plot_traffic(**kwargs)
    assert words in str(info.value)
    assert query_log == []


def test_ratios_not_matching_the_variants_are_rejected(log):
    with pytest.raises(ParameterError, match="expected_ratios has 3 value"):
        xs.LiveMonitor(log, time_col="ts").plot_traffic(expected_ratios=[1, 1, 1])


def test_an_empty_matrix_has_nothing_to_chart():
    empty = TrafficMatrix(pd.DatetimeIndex([]), (), np.zeros((0, 0)), np.zeros((0, 0)), "D")
    with pytest.raises(DataError, match="no exposures to chart"):
        traffic_figure(empty)


def test_missing_matplotlib_names_the_extra(log, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="xpyrment-sql depends on: pip install matplotlib"):
        xs.LiveMonitor(log, time_col="ts").plot_traffic()


def test_the_reports_chart_is_a_png_or_the_reason_there_is_none(monkeypatch):
    png, note = traffic_png(_flat_matrix(last=100, unfinished=False), [1, 1])
    assert png.startswith(b"\x89PNG")
    assert note == ""
    empty = TrafficMatrix(pd.DatetimeIndex([]), (), np.zeros((0, 0)), np.zeros((0, 0)), "D")
    assert traffic_png(empty, [1, 1]) == (None, "No exposures: nothing to chart.")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    png, note = traffic_png(_flat_matrix(last=100, unfinished=False), [1, 1])
    assert png is None
    assert note.startswith("No chart: ")
    assert "pip install matplotlib" in note
