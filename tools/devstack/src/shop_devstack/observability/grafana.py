"""The dashboards of shop_devstack.observability.dashboards as Grafana JSON, written to
deploy/observability/grafana/dashboards (what Grafana provisions in the compose `observability`
profile). `python -m shop_devstack.observability.grafana` writes them; `--check` exits 1 when the
committed files differ from what is generated (tests/observability checks it too)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shop_devstack.launcher import say
from shop_devstack.layout import REPO_ROOT
from shop_devstack.observability.dashboards import Board, Panel, dashboards

DASHBOARD_DIR = REPO_ROOT / "deploy" / "observability" / "grafana" / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}


def panel_json(panel: Panel, index: int) -> dict[str, Any]:
    """Grafana's JSON for one panel, two per row."""
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": PROMETHEUS,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": PROMETHEUS,
                "expr": expr,
                "legendFormat": legend,
            }
            for i, (legend, expr) in enumerate(panel.queries)
        ],
    }


def dashboard_json(board: Board) -> dict[str, Any]:
    """A whole dashboard: the last hour, refreshed every 15 s, linked to the others."""
    return {
        "uid": board.uid,
        "title": board.title,
        "tags": ["shop"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "15s",
        "time": {"from": "now-1h", "to": "now"},
        "links": [{"type": "dashboards", "tags": ["shop"], "asDropdown": True, "title": "Shop"}],
        "panels": [panel_json(p, i) for i, p in enumerate(board.panels)],
    }


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel query of every dashboard."""
    return [
        (f"{name} / {panel['title']}", target["expr"])
        for name, board in dashboards().items()
        for panel in dashboard_json(board)["panels"]
        for target in panel["targets"]
    ]


def rendered() -> dict[str, str]:
    """File name -> the JSON text committed for it."""
    return {
        name: json.dumps(dashboard_json(board), indent=2, ensure_ascii=False) + "\n"
        for name, board in dashboards().items()
    }


def stale(directory: Path = DASHBOARD_DIR) -> list[str]:
    """The dashboard files that are missing, differ from the generated ones, or are extra."""
    wanted = rendered()
    present = {p.name for p in directory.glob("*.json")}
    problems = [
        n
        for n, text in wanted.items()
        if not (directory / n).exists() or (directory / n).read_text() != text
    ]
    return problems + sorted(present - set(wanted))


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards (or, with --check, report the stale ones)."""
    parser = argparse.ArgumentParser(prog="python -m shop_devstack.observability.grafana")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is not up to date")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for name in problems:
            say(f"✗ {name} is not what shop_devstack.observability.grafana generates")
        return 1 if problems else 0
    DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (DASHBOARD_DIR / name).write_text(text)
        say(f"✓ {DASHBOARD_DIR.relative_to(REPO_ROOT) / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
