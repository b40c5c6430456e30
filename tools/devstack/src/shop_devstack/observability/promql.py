"""The metric names a PromQL expression reads (for the check that every dashboard panel and alert
rule names metrics the services export). A tokenizer, not a parser: Prometheus itself says
whether an expression parses; this only has to find the selectors' names in our own expressions."""

from __future__ import annotations

import re

# String literals, label matchers and durations hold no metric name.
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
# Label lists after a grouping modifier: by (job, le), on (instance), group_left (name).
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "start", "end"}
)
# Series that Prometheus writes itself, never a target.
SYNTHETIC = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})


def metric_names(expression: str) -> set[str]:
    """The names of the series an expression selects (functions, keywords, labels left out)."""
    text = _STRINGS.sub('""', expression)
    text = _GROUPING.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = re.sub(r"\$__\w+|\$\w+", " ", text)  # Grafana variables ($__rate_interval)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
