"""Against the running system (tests/conftest.py's `system`, started by the same launcher as
`make up`, which starts Prometheus beside the processes): Prometheus loaded the alert rules and
scrapes every service, every dashboard panel's and alert rule's PromQL parses (Prometheus answers
400 to an expression that does not), and every metric name they read is one the services export.

A family with labels and no sample yet (a DLQ that never held a message, a breaker that never
opened) shows as `# HELP` / `# TYPE` lines only: those count as exported, since the service
declares them. Names Prometheus writes itself (up, ALERTS) need no target.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid

import httpx
import pytest
import yaml
from shop_devstack.accounts import operator_token
from shop_devstack.client import Item, ShopClient
from shop_devstack.observability.grafana import expressions
from shop_devstack.observability.promql import SYNTHETIC, metric_names
from shop_devstack.running import RunningSystem
from shop_testing.wait import eventually

from tests.observability.test_alert_rules import EXPECTED_ALERTS, RULE_FILES

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]
JOBS = {"gateway", "order-service", "payment-service", "user-service", "catalog-service"}
_TYPE = re.compile(r"^# (?:HELP|TYPE) ([a-zA-Z_:][\w:]*)(?: (\w+))?", re.M)
_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)[{ ]", re.M)


def exported_names(text: str) -> set[str]:
    """Every metric name of a /metrics page: samples, and HELP/TYPE of families without any."""
    names = set(_SAMPLE.findall(text))
    for name, kind in re.findall(r"^# TYPE ([a-zA-Z_:][\w:]*) (\w+)", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    names |= {m.group(1) for m in _TYPE.finditer(text)}
    return names


def alert_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule of deploy/observability/rules."""
    return [
        (f"{path.name} / {rule.get('alert') or rule.get('record')}", str(rule["expr"]))
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


@pytest.fixture(scope="module")
def prometheus_url(system: RunningSystem) -> str:
    url = system.state.get("prometheus_url") or os.environ.get("SHOP_E2E_PROMETHEUS_URL")
    if not url:
        log = system.run_dir / "logs" / "devstack.log" if system.run_dir else "its log"
        pytest.fail(
            "the running system has no Prometheus: install Debian's package "
            f"(apt-get install -y prometheus; .ci/run does), or see why in {log}"
        )
    return str(url)


@pytest.fixture(scope="module")
def traffic(system: RunningSystem) -> None:
    """Requests through every service: the RED families have samples only after one."""
    asyncio.run(_traffic(system))


async def _traffic(system: RunningSystem) -> None:
    assert system.run_dir is not None
    client = ShopClient(system.gateway_url)
    try:
        admin = operator_token(system.run_dir)
        email = f"obs-{uuid.uuid4().hex[:8]}@example.com"
        user = await client.create_user(admin, email, "Obs Erver", "correct horse battery")
        token = await client.token(email, "correct horse battery")
        await client.get_user(token, int(user["id"]))
        await client.get_user(token, int(user["id"]))  # a cache hit at the gateway
        for _ in range(2):  # the catalog: a page (a hit at the gateway) and a product (its cache)
            for path in ("/api/products?category=books", "/api/products/BOOK-001"):
                browsed = await client.http.get(path)
                assert browsed.status_code == 200, browsed.text
        placed = await client.place_order(token, [Item("BOOK-001", 1)])
        assert placed.status_code == 201, placed.text
        order_id = str(placed.json()["id"])

        async def paid() -> bool:
            return (await client.get_order(token, order_id))["status"] == "PAID"

        await eventually(paid, timeout=60, what=f"order {order_id} to be PAID")
        await client.payments_for(token, order_id)
    finally:
        await client.close()


@pytest.fixture(scope="module")
def scrape_urls(prometheus_url: str) -> dict[str, set[str]]:
    """Job -> the /metrics URLs Prometheus scrapes, once every service's targets are up."""
    found: dict[str, set[str]] = {}

    async def every_service_up() -> bool:
        async with httpx.AsyncClient(base_url=prometheus_url, timeout=10) as http:
            targets = (await http.get("/api/v1/targets")).json()["data"]["activeTargets"]
        found.clear()
        for target in targets:
            found.setdefault(target["labels"]["job"], set()).add(target["scrapeUrl"])
        return bool(targets) and all(t["health"] == "up" for t in targets) and set(found) >= JOBS

    asyncio.run(eventually(every_service_up, timeout=60, what=f"every target of {sorted(JOBS)} up"))
    return found


async def test_prometheus_loaded_the_rules_and_scrapes_every_service(
    prometheus_url: str, scrape_urls: dict[str, set[str]]
) -> None:
    async with httpx.AsyncClient(base_url=prometheus_url, timeout=10) as http:
        groups = (await http.get("/api/v1/rules")).json()["data"]["groups"]
    assert {r["name"] for g in groups for r in g["rules"]} >= EXPECTED_ALERTS
    assert len(scrape_urls["user-service"]) == 2  # both replicas


async def test_every_panel_and_rule_expression_parses(prometheus_url: str) -> None:
    async with httpx.AsyncClient(base_url=prometheus_url, timeout=10) as http:
        bad = await http.get("/api/v1/query", params={"query": "sum(rate(x[5m]"})
        assert bad.status_code == 400  # what a parse error looks like
        failures = []
        for where, expr in expressions() + alert_expressions():
            reply = await http.get(
                "/api/v1/query", params={"query": expr.replace("$__rate_interval", "1m")}
            )
            if reply.status_code != 200:
                failures.append(f"{where}: {reply.json().get('error')}")
        assert failures == []


async def test_every_metric_a_panel_or_rule_reads_is_exported(
    scrape_urls: dict[str, set[str]], traffic: None
) -> None:
    exported: set[str] = set(SYNTHETIC)
    async with httpx.AsyncClient(timeout=10) as http:
        for url in set().union(*scrape_urls.values()):
            exported |= exported_names((await http.get(url)).text)
    missing = {
        f"{where}: {name}"
        for where, expr in expressions() + alert_expressions()
        for name in metric_names(expr)
        if name not in exported
    }
    assert sorted(missing) == []


def test_exported_names_counts_declared_families_without_samples() -> None:
    page = (
        "# HELP shop_queue_depth Messages ready.\n# TYPE shop_queue_depth gauge\n"
        "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
        'reqs_total{code="200"} 3.0\n'
    )
    assert exported_names(page) >= {
        "shop_queue_depth",
        "lat_seconds_bucket",
        "reqs_total",
    }
    assert "other" not in exported_names(page)
