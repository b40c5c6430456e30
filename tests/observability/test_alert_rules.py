"""The alert rules (deploy/observability/rules) pass `promtool check rules` and their unit tests
(`promtool test rules`: each alert fires on the series that should fire it and not on its
neighbours), and each rule carries what an on-call engineer needs: a `for:`, a severity, a summary,
a description and a runbook section that exists in docs/observability.md.

promtool comes from Debian's `prometheus` package (.ci/run installs it). Without it these tests
fail, saying how to install it: they are never skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from shop_devstack.layout import REPO_ROOT

OBSERVABILITY = REPO_ROOT / "deploy" / "observability"
RULE_FILES = sorted((OBSERVABILITY / "rules").glob("*.yml"))
RULE_TESTS = sorted((OBSERVABILITY / "rules" / "tests").glob("*.yml"))
DOC = REPO_ROOT / "docs" / "observability.md"
EXPECTED_ALERTS = {
    "ServiceDown",
    "CircuitBreakerOpen",
    "DeadLetterQueueNotEmpty",
    "OutboxLagHigh",
    "HighErrorRatio",
    "HighP99Latency",
}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; fail the test with the install command when it is missing."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed: `apt-get install -y prometheus` (Debian's package; "
            ".ci/run installs it without starting the service)"
        )
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def alert_rules() -> list[dict[str, object]]:
    """Every alerting rule of every rule file."""
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def test_rule_files_pass_promtool_check_rules() -> None:
    assert RULE_FILES, "no rule file in deploy/observability/rules"
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_passes_its_promtool_unit_tests() -> None:
    assert RULE_TESTS, "no promtool test file in deploy/observability/rules/tests"
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert names == EXPECTED_ALERTS
    assert fired == names, f"no firing test for {names - fired}"
    assert silent == names, f"no silent test for {names - silent}"


def test_every_alert_has_for_severity_summary_description_and_a_documented_runbook() -> None:
    anchors = {
        re.sub(r"[^a-z0-9-]", "", title.strip().lower().replace(" ", "-"))
        for title in re.findall(r"^#{2,4} (.+)$", DOC.read_text(), re.M)
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert rule.get("for"), f"{name}: no `for:` (one bad scrape would page)"
        labels = rule.get("labels") or {}
        assert isinstance(labels, dict)
        assert labels.get("severity") in {"warning", "critical"}, f"{name}: severity"
        annotations = rule.get("annotations") or {}
        assert isinstance(annotations, dict)
        assert annotations.get("summary"), f"{name}: no summary"
        assert annotations.get("description"), f"{name}: no description"
        runbook = str(annotations.get("runbook", ""))
        assert runbook.startswith("docs/observability.md#"), f"{name}: runbook {runbook!r}"
        assert runbook.partition("#")[2] in anchors, f"{name}: {runbook} has no section"


def test_compose_prometheus_config_passes_promtool_check_config(tmp_path: Path) -> None:
    """The compose config, its rule_files pointed at the repository's rules."""
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    config["rule_files"] = [str(OBSERVABILITY / "rules" / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = promtool("check", "config", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr
