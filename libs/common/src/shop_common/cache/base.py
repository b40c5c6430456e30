"""Markers shared by the cache levels: a miss and a cached "not found"."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["MISS", "NEGATIVE", "Marker"]


class Marker(enum.Enum):
    """Lookup results that are not values (an enum, so `is` checks type-narrow)."""

    MISS = "miss"
    NEGATIVE = "negative"


MISS: Final = Marker.MISS
"""Nothing cached under the key (or it expired)."""
NEGATIVE: Final = Marker.NEGATIVE
"""The loader said "not found" and that answer is cached (negative caching)."""
