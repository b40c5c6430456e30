"""Scraping every instance's /metrics for the console (prometheus_client's own parser).

Instances come from the registry (shop_common.discovery). Only the families the console shows
are parsed: the rest of each exposition (histograms above all) is skipped line by line first,
so a round costs little CPU. A scrape that fails or times out marks the instance down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families
from shop_common.discovery import Registry

from web_service.domain.console import Sample, Scrape

WANTED = (
    "circuit_breaker_state",
    "circuit_breaker_failure_rate",
    "cache_hits_total",
    "cache_misses_total",
    "gateway_cache_lookups_total",
    "gateway_rate_limit_rejections_total",
    "shop_queue_depth",
    "shop_messages_consumed_total",
    "shop_outbox_pending",
    "shop_outbox_lag_seconds",
    "shop_saga_outcomes_total",
)
_FAMILIES = tuple(name.removesuffix("_total") for name in WANTED)


def _wanted_line(line: str) -> bool:
    if line.startswith("# "):
        parts = line.split(" ", 3)
        return len(parts) > 2 and parts[2] in _FAMILIES
    name = line.split("{", 1)[0].split(" ", 1)[0]
    return name in WANTED


def parse(text: str) -> tuple[Sample, ...]:
    """The samples of the wanted families in one exposition."""
    kept = "\n".join(line for line in text.splitlines() if _wanted_line(line)) + "\n"
    return tuple(
        (sample.name, tuple(sorted(sample.labels.items())), float(sample.value))
        for family in text_string_to_metric_families(kept)
        for sample in family.samples
        if sample.name in WANTED
    )


class MetricsScraper:
    """`await scraper.scrape()`: one Scrape per known instance of each service.

    services maps the name the console shows to the name in discovery.
    """

    def __init__(self, registry: Registry, services: Mapping[str, str], *, timeout: float) -> None:
        self._registry = registry
        self._services = dict(services)
        self._http = httpx.AsyncClient(timeout=timeout)
        self._watched = False

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _one(self, service: str, address: str) -> Scrape:
        try:
            response = await self._http.get(f"http://{address}/metrics")
            response.raise_for_status()
            return Scrape(service, address, True, parse(response.text))
        except (httpx.HTTPError, ValueError) as exc:
            return Scrape(service, address, False, error=type(exc).__name__)

    async def scrape(self) -> list[Scrape]:
        """Every instance, concurrently."""
        if not self._watched:
            await self._registry.watch(*self._services.values())
            self._watched = True
        targets = [
            (shown, instance.address)
            for shown, name in self._services.items()
            for instance in self._registry.instances(name)
        ]
        return list(await asyncio.gather(*(self._one(s, a) for s, a in targets)))
