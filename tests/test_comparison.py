"""Published-vs-reproduced rows: directions, the float-safe band, the one comparable rule, and
mean ± sd over seeds."""

import math
import statistics

import pytest

from kexue.comparison import (
    ArticleResults,
    Comparison,
    Published,
    RunResults,
    comparable,
    compare,
    mean_sd,
)


def test_higher_is_better_accepts_anything_above_and_down_to_the_tolerance():
    p = Published(0.97, "paper", "higher", 0.03)
    assert p.holds(0.99) and p.holds(0.97)
    assert p.holds(0.94)  # 0.97 - 0.94 is 0.030000000000000027 in floats: still in band
    assert not p.holds(0.9399)


def test_lower_is_better_accepts_anything_below_and_up_to_the_tolerance():
    p = Published(3.35, "paper", "lower", 0.05)
    assert p.holds(2.0) and p.holds(3.40)
    assert not p.holds(3.4001)


def test_two_sided_accepts_only_the_band_around_the_value():
    p = Published(-2200.0, "article", "two-sided", 100.0)
    assert p.holds(-2300.0) and p.holds(-2100.0)
    assert not p.holds(-2300.5) and not p.holds(-2099.5)


def test_zero_tolerance_accepts_only_the_published_side():
    assert Published(1.0, "x", "lower").holds(1.0)
    assert not Published(1.0, "x", "lower").holds(1.001)
    assert not Published(1.0, "x").holds(0.999)


def test_float_slack_scales_with_the_value_but_stays_negligible():
    p = Published(1980.50, "paper", "higher", 100.0)
    assert p.holds(1880.50)
    assert not p.holds(1880.49)


def test_band_is_written_with_its_direction():
    assert Published(1, "x", "lower", 0.05).band == "≤ +0.05"
    assert Published(1, "x", "higher", 0.03).band == "≥ −0.03"
    assert Published(1, "x", "two-sided", 2).band == "±2"


@pytest.mark.parametrize("profile, source, complete, expected", [
    ("full", "official", True, True),
    ("full", "official", False, False),
    ("default", "official", True, False),
    ("smoke", "official", True, False),
    ("full", "embedded", True, False),
    ("full", "synthetic", True, False),
])
def test_the_single_comparable_rule(profile, source, complete, expected):
    assert comparable(profile, source, complete) is expected
    results = ArticleResults("a", profile, source, {})
    assert results.comparable(complete) is expected


def _results(profile="full", source="official", values=(3.30, 3.36, 3.42), complete=True):
    run = RunResults("r", {s: {"test_bpd": v, "complete_data": complete}
                           for s, v in enumerate(values)})
    return ArticleResults("a", profile, source, {"r": run}), run


def test_compare_summarises_seeds_by_mean_and_sample_sd():
    results, run = _results()
    row = compare(results, run, "test_bpd", "bits/dim", Published(3.35, "paper", "lower", 0.05))
    assert row.values == (3.30, 3.36, 3.42)
    assert row.mean == pytest.approx(3.36)
    assert row.sd == pytest.approx(statistics.stdev([3.30, 3.36, 3.42])) == pytest.approx(0.06)
    assert row.status == "within band"
    out = row.as_row()
    assert out["seeds"] == 3 and out["sd"] == pytest.approx(0.06)
    assert out["reproduced"] == pytest.approx(3.36) and out["band"] == "≤ +0.05"


def test_one_seed_has_no_sd():
    results, run = _results(values=(3.5,))
    row = compare(results, run, "test_bpd", "bits/dim", Published(3.35, "paper", "lower", 0.05))
    assert row.sd is None and row.status == "outside band"


def test_the_mean_decides_the_band_not_the_best_seed():
    results, run = _results(values=(3.30, 3.50))  # best seed inside, mean 3.40 + slack outside
    row = compare(results, run, "test_bpd", "m", Published(3.35, "paper", "lower", 0.04))
    assert row.status == "outside band"


def test_complete_data_defaults_to_the_metrics_flag():
    results, run = _results(complete=False)
    row = compare(results, run, "test_bpd", "m", Published(3.35, "paper", "lower", 0.05))
    assert not row.comparable and row.status == "not comparable"
    results, run = _results(complete=True)
    assert compare(results, run, "test_bpd", "m", None, complete_data=False).comparable is False


@pytest.mark.parametrize("profile, source", [("default", "official"), ("full", "embedded")])
def test_reduced_profile_or_other_data_is_not_comparable(profile, source):
    results, run = _results(profile, source)
    row = compare(results, run, "test_bpd", "m", Published(3.35, "paper", "lower", 0.05))
    assert row.status == "not comparable"


def test_status_for_missing_published_and_failed_runs():
    assert Comparison("r", "m", None, (1.0,), True).status == "no published number"
    p = Published(1.0, "x", "lower", 0.1)
    assert Comparison("r", "m", p, (1.0, math.nan), True).status == "failed"
    assert Comparison("r", "m", p, (), True).status == "failed"
    assert math.isnan(Comparison("r", "m", p, (), True).mean)


def test_mean_sd_is_the_one_seed_summary():
    assert mean_sd([3.30, 3.36, 3.42]) == (pytest.approx(3.36), pytest.approx(0.06))
    mean, sd = mean_sd([5.0])
    assert mean == 5.0 and math.isnan(sd)
    assert all(math.isnan(v) for v in mean_sd([]))
    # a failed seed (non-finite, or null in metrics.json) is not dropped
    assert all(math.isnan(v) for v in mean_sd([1.0, math.nan]))
    assert all(math.isnan(v) for v in mean_sd([1.0, None, 2.0]))
