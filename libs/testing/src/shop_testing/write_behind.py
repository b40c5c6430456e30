"""The flaky store and fast retry policy the write-behind suites share (shop_common's and the
caching examples'): one copy, imported by both."""

from __future__ import annotations

from dataclasses import replace

from shop_common.cache import WRITE_BEHIND_RETRY

FAST_RETRY = replace(WRITE_BEHIND_RETRY, initial_backoff=0.005)

Batch = list[tuple[str, object]]


class FlakyStore:
    """The source of truth as the test sees it: every batch it accepted, in order."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.failing = False
        self.attempts = 0
        self.state: dict[str, object] = {}

    async def __call__(self, batch: Batch) -> None:
        self.attempts += 1
        if self.failing:
            raise ConnectionError("store down")
        self.batches.append(batch)
        self.state.update(batch)

    @property
    def writes(self) -> Batch:
        """Every accepted item, batches flattened, in the order they were written."""
        return [item for batch in self.batches for item in batch]
