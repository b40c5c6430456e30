"""The demo's narration contract (a failing step is named, exit code) and the compose key import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shop_devstack.demo.narration import Step, expect, run_steps, summary
from shop_devstack.devkeys import ensure_dev_keys, import_compose_keys


async def _fine(ctx: None, observe) -> None:  # type: ignore[no-untyped-def]
    observe("saw what was promised")


async def _broken(ctx: None, observe) -> None:  # type: ignore[no-untyped-def]
    expect(False, "orders stayed PENDING")


async def _crashing(ctx: None, observe) -> None:  # type: ignore[no-untyped-def]
    raise KeyError("status")


async def test_a_failing_step_is_named_and_the_exit_code_is_non_zero() -> None:
    steps = [
        Step("One", "p", "e", _fine),
        Step("Two", "p", "e", _broken),
        Step("Three", "p", "e", _crashing),
    ]
    lines: list[str] = []
    outcomes = await run_steps(steps, None, write=lines.append)
    assert [o.ok for o in outcomes] == [True, False, False]
    assert "   → saw what was promised" in lines
    assert summary(outcomes, 3, write=lines.append) == 1
    assert "✗ step failed: Two: orders stayed PENDING" in lines
    assert "✗ step failed: Three: KeyError: 'status'" in lines


async def test_an_essential_failure_stops_the_walk_and_every_pass_exits_zero() -> None:
    lines: list[str] = []
    outcomes = await run_steps(
        [Step("Login", "p", "e", _broken, essential=True), Step("B", "p", "e", _fine)],
        None,
        lines.append,
    )
    assert len(outcomes) == 1
    assert summary(outcomes, 2, lines.append) == 1
    assert "✗ 1 step(s) not run" in lines
    passed = await run_steps([Step("A", "p", "e", _fine)], None, lines.append)
    assert summary(passed, 1, lines.append) == 0


def test_the_compose_keygen_key_is_adopted_for_the_operator(tmp_path: Path) -> None:
    generator = Path(__file__).parents[3] / "deploy" / "keys" / "generate_dev_keys.py"
    volume = tmp_path / "jwt"
    subprocess.run([sys.executable, str(generator), str(volume)], check=True, capture_output=True)
    again = subprocess.run(
        [sys.executable, str(generator), str(volume)], check=True, capture_output=True, text=True
    )
    assert "keeping the existing key" in again.stdout
    imported = import_compose_keys(volume, tmp_path / "run")
    assert ensure_dev_keys(tmp_path / "run") == imported
    assert imported.kid == (volume / "private" / "jwt_kid").read_text()
