"""The order service's own metric: how sagas end (docs/metrics.md lists every family)."""

from __future__ import annotations

from prometheus_client import Counter

from order_service.domain.order import SAGA_OUTCOMES

SAGA_OUTCOME_COUNTER = Counter(
    "shop_saga_outcomes_total",
    "Orders whose saga ended, by outcome (paid, payment_failed, expired, cancelled, refunded, rejected),"
    " counted when the transition commits.",
    ["outcome"],
)
_CHILDREN = {outcome: SAGA_OUTCOME_COUNTER.labels(outcome) for outcome in SAGA_OUTCOMES}


def count_saga_outcome(outcome: str) -> None:
    """One more saga ended with `outcome` (every outcome's series exists from the start at 0)."""
    _CHILDREN[outcome].inc()
