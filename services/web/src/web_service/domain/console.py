"""The console's view of the system, computed from the /metrics every instance exports
(docs/metrics.md): one scrape per instance, a short history of the counters for the last
minute's deltas, and the JSON snapshot the console page draws.

Counters are summed over the instances of a service; a counter that went down (a restarted
instance) counts from its new value. Everything here is pure: the scraper is an adapter.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Labels = tuple[tuple[str, str], ...]
# name, sorted labels, value (one line of the exposition format)
Sample = tuple[str, Labels, float]
Key = tuple[str, str, Labels]  # service, sample name, labels


@dataclass(frozen=True, slots=True)
class Scrape:
    """One instance's /metrics at one moment (up=False: it did not answer; samples empty)."""

    service: str
    address: str
    up: bool
    samples: tuple[Sample, ...] = ()
    error: str | None = None


def labels(sample: Sample) -> dict[str, str]:
    """The sample's labels as a dict."""
    return dict(sample[1])


def counters(scrapes: Iterable[Scrape]) -> dict[Key, float]:
    """Every `*_total` sample, summed per service and labels."""
    summed: dict[Key, float] = {}
    for scrape in scrapes:
        for name, sample_labels, value in scrape.samples:
            if name.endswith("_total"):
                key = (scrape.service, name, sample_labels)
                summed[key] = summed.get(key, 0.0) + value
    return summed


@dataclass
class History:
    """The counters of the last `window_seconds` (a point per scrape round)."""

    window_seconds: float = 60.0
    _points: deque[tuple[float, dict[Key, float]]] = field(default_factory=deque)

    def add(self, at: float, values: dict[Key, float]) -> None:
        """Record a round; points older than the window (but the one just before it) go."""
        self._points.append((at, values))
        while len(self._points) > 2 and self._points[1][0] <= at - self.window_seconds:
            self._points.popleft()

    def delta(self, key: Key) -> float:
        """How much the counter grew over the window (0 for a counter seen once)."""
        if not self._points:
            return 0.0
        now = self._points[-1][1].get(key, 0.0)
        then = self._points[0][1].get(key, 0.0)
        return now - then if now >= then else now  # went down: the instance restarted

    @property
    def latest(self) -> dict[Key, float]:
        """The counters of the last round."""
        return self._points[-1][1] if self._points else {}

    @property
    def span_seconds(self) -> float:
        """The time the deltas cover."""
        return self._points[-1][0] - self._points[0][0] if self._points else 0.0


def _ratio(hits: float, misses: float) -> float | None:
    return round(hits / (hits + misses), 4) if hits + misses > 0 else None


def _queue_kind(queue: str) -> str:
    if queue.endswith(".dlq"):
        return "dlq"
    return "retry" if ".retry." in queue else "work"


def _instances(scrapes: list[Scrape]) -> list[dict[str, Any]]:
    services: dict[str, list[dict[str, Any]]] = {}
    for s in scrapes:
        row = {"address": s.address, "up": s.up, "error": s.error}
        services.setdefault(s.service, []).append(row)
    return [
        {"service": name, "up": sum(1 for i in rows if i["up"]), "instances": rows}
        for name, rows in sorted(services.items())
    ]


def _breakers(scrapes: list[Scrape]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for s in scrapes:
        for name, sample_labels, value in s.samples:
            found = dict(sample_labels)
            key = (s.service, found.get("name", ""))
            if name == "circuit_breaker_state" and value == 1:
                rows.setdefault(key, {"service": s.service, "name": key[1]})["state"] = found.get(
                    "state"
                )
            elif name == "circuit_breaker_failure_rate":
                rows.setdefault(key, {"service": s.service, "name": key[1]})["failure_rate"] = (
                    round(value, 4)
                )
    return sorted(rows.values(), key=lambda r: (r["service"], r["name"]))


def _caches(totals: Mapping[Key, float], history: History) -> list[dict[str, Any]]:
    found: dict[tuple[str, str, str], dict[str, float]] = {}
    for service, name, sample_labels in totals:
        got = dict(sample_labels)
        if name in ("cache_hits_total", "cache_misses_total"):
            kind = "hits" if name == "cache_hits_total" else "misses"
            row = (service, got.get("cache", ""), got.get("level", ""))
        elif name == "gateway_cache_lookups_total":
            kind = "hits" if got.get("result") == "hit" else "misses"
            row = (service, f"response:{got.get('route', '')}", "gateway")
        else:
            continue
        bucket = found.setdefault(row, {"hits": 0, "misses": 0, "hits_1m": 0, "misses_1m": 0})
        bucket[kind] += totals[(service, name, sample_labels)]
        bucket[f"{kind}_1m"] += history.delta((service, name, sample_labels))
    return [
        {
            "service": service,
            "cache": cache,
            "level": level,
            "hit_ratio": _ratio(b["hits"], b["misses"]),
            "hit_ratio_1m": _ratio(b["hits_1m"], b["misses_1m"]),
            "lookups_1m": int(b["hits_1m"] + b["misses_1m"]),
        }
        for (service, cache, level), b in sorted(found.items())
    ]


def _by_label(
    totals: Mapping[Key, float], history: History, metric: str, label: str
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, value in totals.items():
        if key[1] == metric:
            name = dict(key[2]).get(label, "")
            row = out.setdefault(name, {"total": 0, "last_minute": 0})
            row["total"] += value
            row["last_minute"] += history.delta(key)
    return out


def _gauges(scrapes: list[Scrape], metric: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.service, dict(lab), value)
        for s in scrapes
        for name, lab, value in s.samples
        if name == metric
    ]


def _queues(scrapes: list[Scrape], totals: Mapping[Key, float], history: History) -> list[Any]:
    depth: dict[str, float] = {}
    for _, lab, value in _gauges(scrapes, "shop_queue_depth"):
        queue = lab.get("queue", "")
        depth[queue] = max(depth.get(queue, 0.0), value)  # each consumer samples the same queue
    handled: dict[str, dict[str, float]] = {}
    for key in totals:
        if key[1] == "shop_messages_consumed_total":
            lab = dict(key[2])
            row = handled.setdefault(lab.get("queue", ""), {})
            outcome = lab.get("outcome", "")
            row[outcome] = row.get(outcome, 0) + history.delta(key)
    names = sorted(set(depth) | set(handled))
    return [
        {
            "queue": q,
            "kind": _queue_kind(q),
            "depth": depth.get(q),
            "handled_1m": {k: int(v) for k, v in sorted(handled.get(q, {}).items())},
        }
        for q in names
    ]


def _outbox(scrapes: list[Scrape]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, float]] = {}
    for service, _, value in _gauges(scrapes, "shop_outbox_pending"):
        rows.setdefault(service, {"pending": 0, "lag_seconds": 0})["pending"] += value
    for service, _, value in _gauges(scrapes, "shop_outbox_lag_seconds"):
        row = rows.setdefault(service, {"pending": 0, "lag_seconds": 0})
        row["lag_seconds"] = max(row["lag_seconds"], round(value, 3))
    return [{"service": s, **v} for s, v in sorted(rows.items())]


def snapshot(scrapes: list[Scrape], history: History, at: float) -> dict[str, Any]:
    """The console's JSON for one round (history already holds this round's counters)."""
    totals = history.latest
    limits = _by_label(totals, history, "gateway_rate_limit_rejections_total", "route")
    sagas = _by_label(totals, history, "shop_saga_outcomes_total", "outcome")
    return {
        "at": at,
        "window_seconds": round(history.span_seconds, 1),
        "services": _instances(scrapes),
        "breakers": _breakers(scrapes),
        "caches": _caches(totals, history),
        "rate_limit_rejections": [{"route": r, **v} for r, v in sorted(limits.items())],
        "queues": _queues(scrapes, totals, history),
        "outbox": _outbox(scrapes),
        "sagas": [{"outcome": o, **v} for o, v in sorted(sagas.items())],
    }
