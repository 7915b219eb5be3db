"""The console's small computations: latency quantiles from histogram buckets, the request
rate window, the CSV guard and the bar chart's scaling."""

from __future__ import annotations

import math

import pytest

from serving.console import charts, data


def test_quantiles_interpolate_within_the_bucket_like_prometheus() -> None:
    buckets = {0.01: 50.0, 0.02: 100.0, math.inf: 100.0}
    assert data._quantile(buckets, 0.5) == pytest.approx(0.01)
    assert data._quantile(buckets, 0.95) == pytest.approx(0.019)  # 0.01 + 0.01 * 45 / 50
    assert data._quantile({0.01: 0.0, math.inf: 0.0}, 0.5) is None
    beyond = {0.01: 1.0, math.inf: 10.0}
    assert data._quantile(beyond, 0.99) == 0.01  # past the last bound: only the bound is known


def test_the_rate_counts_since_the_last_view_a_minute_old(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    clock = [1000.0]
    monkeypatch.setattr(data.time, "time", lambda: clock[0])
    rate = data.RequestRate()  # starts at (1000, 0)
    clock[0] = 1010.0
    assert rate.update(50) == (5.0, 10.0)  # since the start
    clock[0] = 1069.0
    assert rate.update(110) == (110 / 69, 69.0)  # the view at 1010 is not a minute old yet
    clock[0] = 1075.0
    assert rate.update(120) == pytest.approx((70 / 65, 65.0))  # from the view at 1010


def test_csv_cells_never_start_a_formula() -> None:
    assert [data._cell(v) for v in ("=1+1", "+x", "-2", "@a", "c001", 3)] == \
        ["'=1+1", "'+x", "'-2", "'@a", "c001", 3]


def test_bars_scale_to_the_full_value_when_given() -> None:
    scaled = charts.bars("t", ["a", "b"], [0.25, 0.5])
    full = charts.bars("t", ["a", "b"], [0.25, 0.5], full=1.0)
    span = charts.WIDTH - charts.LABEL_WIDTH - 70
    assert f'width="{span:.1f}"' in scaled and f'width="{span / 2:.1f}"' in full
    assert "<title>t</title>" in full and 'role="img"' in full
    assert "&lt;b&gt;" in charts.bars("x", ["<b>"], [1.0])  # labels are escaped
