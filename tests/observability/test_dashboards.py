"""The dashboards (deploy/observability/grafana/dashboards) are what
shop_devstack.observability.grafana generates, every panel's PromQL passes promtool, and each
service's dashboard has the sections an SRE looks for first. tests/observability/
test_dashboards_live.py checks their metric names against a running system."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from shop_devstack.observability import grafana
from shop_devstack.observability.dashboards import SERVICES
from shop_devstack.observability.promql import metric_names

from tests.observability.test_alert_rules import OBSERVABILITY, promtool

PROVISIONING = OBSERVABILITY / "grafana" / "provisioning"


def test_committed_dashboards_are_the_generated_ones() -> None:
    assert grafana.stale() == [], "run `python -m shop_devstack.observability.grafana`"


def test_stale_reports_an_edited_and_an_extra_dashboard(tmp_path: Path) -> None:
    for name, text in grafana.rendered().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "shop-gateway.json").write_text("{}")
    (tmp_path / "hand-made.json").write_text("{}")
    assert grafana.stale(tmp_path) == ["shop-gateway.json", "hand-made.json"]


def test_every_panel_expression_passes_promtool(tmp_path: Path) -> None:
    """Each expression as a recording rule: `promtool check rules` parses it."""
    rules = [
        {"record": f"panel:{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, (_, expr) in enumerate(grafana.expressions())
    ]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_datasources_the_dashboards_use_are_provisioned() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    uids = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    assert uids == {"prometheus": "prometheus", "jaeger": "jaeger"}
    for path in grafana.DASHBOARD_DIR.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"


@pytest.mark.parametrize("job", list(SERVICES))
def test_each_service_dashboard_has_red_breakers_caches_queues_and_outbox(job: str) -> None:
    board = json.loads((grafana.DASHBOARD_DIR / f"shop-{job}.json").read_text())
    names = set().union(*(metric_names(t["expr"]) for p in board["panels"] for t in p["targets"]))
    assert {
        "shop_requests_total",
        "shop_request_duration_seconds_bucket",
        "shop_requests_in_flight",
        "circuit_breaker_state",
        "cache_hits_total",
        "cache_misses_total",
        "shop_queue_depth",
        "shop_outbox_lag_seconds",
    } <= names
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs
    assert "retry" in exprs and "dlq" in exprs
    assert all(f'job="{job}"' in t["expr"] for p in board["panels"] for t in p["targets"])


def test_the_overview_shows_every_service_alerts_and_saga_outcomes() -> None:
    board = json.loads((grafana.DASHBOARD_DIR / "shop-overview.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert any("shop_saga_outcomes_total" in e for e in exprs)
    assert any("ALERTS" in e for e in exprs)
    assert any(all(job in e for job in SERVICES) for e in exprs)


def test_metric_names_reads_selectors_not_functions_labels_or_keywords() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{op!~"x|rate(y)"}[5m] offset 1h)))'
        " > on (instance) group_left (name) b and ignoring (le) c_total / bool 2"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c_total"}
    assert metric_names("sum(rate(x[$__rate_interval])) * 60") == {"x"}
    assert metric_names('up{job="gateway"} == 0') == {"up"}
