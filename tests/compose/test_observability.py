"""The compose stack's observability profile: Prometheus (the offline image or the official one)
loaded deploy/observability/prometheus.yml and the alert rules, and scrapes every service and
RabbitMQ's prometheus plugin. (Jaeger and Grafana run only where a registry answers.)"""

from __future__ import annotations

import httpx
import pytest
from shop_devstack.compose_stack import Running
from shop_testing.wait import eventually

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(600)]
JOBS = {"gateway", "order-service", "payment-service", "user-service", "rabbitmq", "prometheus"}
ALERTS = {
    "ServiceDown",
    "CircuitBreakerOpen",
    "DeadLetterQueueNotEmpty",
    "OutboxLagHigh",
    "HighErrorRatio",
    "HighP99Latency",
}


async def test_prometheus_loads_the_rules_and_sees_every_target_up(
    compose_system: Running,
) -> None:
    url = f"http://{compose_system.stack.published('prometheus', 9090)}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        groups = (await http.get("/api/v1/rules")).json()["data"]["groups"]
        assert {r["name"] for g in groups for r in g["rules"]} >= ALERTS
        seen: dict[str, str] = {}

        async def every_target_up() -> bool:
            targets = (await http.get("/api/v1/targets")).json()["data"]["activeTargets"]
            seen.clear()
            seen.update({t["scrapeUrl"]: t["health"] for t in targets})
            jobs = {t["labels"]["job"] for t in targets}
            return jobs >= JOBS and all(t["health"] == "up" for t in targets)

        # Scrapes every 15 s: a target is `up` after its first scrape.
        await eventually(every_target_up, timeout=90, what="every target up")
        user_targets = [u for u in seen if ":9101/" in u]
        assert len(user_targets) == 2  # both user-service replicas
