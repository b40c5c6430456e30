"""Reading a service's /metrics as Prometheus does: over HTTP, parsed by prometheus_client.

samples = await scrape("http://127.0.0.1:9101/metrics")
samples.value("shop_requests_total", protocol="grpc", code="NOT_FOUND")   # summed; 0 if none
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Samples:
    """Every sample of one scrape: (sample name, labels, value)."""

    rows: tuple[tuple[str, dict[str, str], float], ...]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0.0 if none)."""
        return sum(
            value
            for sample, have, value in self.rows
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str, **labels: str) -> bool:
        """True when at least one sample called `name` carries `labels`."""
        return any(
            sample == name and all(have.get(k) == v for k, v in labels.items())
            for sample, have, _ in self.rows
        )

    def label_values(self, name: str, label: str) -> set[str]:
        """The values `label` takes on the samples called `name`."""
        return {have[label] for sample, have, _ in self.rows if sample == name and label in have}


def parse(text: str) -> Samples:
    """The samples of a Prometheus text exposition."""
    return Samples(
        tuple(
            (sample.name, dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        )
    )


async def scrape(url: str, *, timeout: float = 10.0) -> Samples:  # noqa: ASYNC109
    """GET url (a /metrics endpoint) and parse it; the answer must be 200."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.get(url)
    response.raise_for_status()
    return parse(response.text)


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
