"""`make load`'s figures come from Locust's own CSV, aggregated row included."""

from __future__ import annotations

from pathlib import Path

import pytest
from shop_devstack.load.__main__ import read_stats, report

HEADER = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"


def test_figures_are_the_aggregated_row_with_the_error_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "l_stats.csv").write_text(
        HEADER
        + "\nPOST,POST /api/orders,100,2,30,31,5,90,10,20.0,0.4,30,33,35,36,40,60,70,80,90,90,90"
        + "\nGET,GET /api/users/{id},300,0,8,9,1,50,10,60.5,0,8,9,9,10,12,20,25,30,50,50,50"
        + "\n,Aggregated,400,2,10,12,1,90,10,80.5,0.4,10,12,14,15,20,45,60,70,90,90,90\n"
    )
    lines: list[str] = []
    import shop_devstack.load.__main__ as load

    monkeypatch.setattr(load, "say", lines.append)
    figures = report(read_stats(tmp_path / "l"), users=20, seconds=30)
    assert figures == {
        "bench": "load",
        "users": 20,
        "duration_s": 30,
        "requests": 400,
        "rps": 80.5,
        "p50_ms": 10.0,
        "p95_ms": 45.0,
        "p99_ms": 70.0,
        "error_rate": 0.005,
    }
    assert any(line.startswith("POST /api/orders") for line in lines)
