"""Narrated steps: each says what it shows and which pattern, prints what it observed, and
either behaves as described or fails with the reason (the demo then exits non-zero naming it)."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Context = TypeVar("Context")


class StepFailed(Exception):
    """The system did not behave as the step describes; str() says how."""


def expect(condition: bool, failure: str) -> None:
    """Fail the current step with `failure` unless condition holds."""
    if not condition:
        raise StepFailed(failure)


@dataclass(frozen=True)
class Step(Generic[Context]):
    """One demo step: what it shows, the pattern's name, and the code that shows it."""

    title: str
    pattern: str
    explanation: str
    run: Callable[[Context, Callable[[str], None]], Awaitable[None]]
    essential: bool = False  # later steps cannot run without it


@dataclass
class Outcome:
    """How one step went."""

    title: str
    ok: bool
    seconds: float
    reason: str = ""
    observed: list[str] = field(default_factory=list)


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def run_steps(
    steps: Sequence[Step[Context]], context: Context, write: Callable[[str], None] = _write
) -> list[Outcome]:
    """Run every step in order, narrating; stop early only after an essential step failed."""
    outcomes: list[Outcome] = []
    for number, step in enumerate(steps, start=1):
        write("")
        write(f"── {number}/{len(steps)}  {step.title}   [{step.pattern}]")
        write(f"   {step.explanation}")
        observed: list[str] = []

        def observe(line: str, observed: list[str] = observed) -> None:
            observed.append(line)
            write(f"   → {line}")

        started = time.monotonic()
        try:
            await step.run(context, observe)
        except StepFailed as exc:
            outcome = Outcome(step.title, False, time.monotonic() - started, str(exc), observed)
        except Exception as exc:  # a crash in a step is a failed step, named, not a traceback
            reason = f"{type(exc).__name__}: {exc}"
            outcome = Outcome(step.title, False, time.monotonic() - started, reason, observed)
        else:
            outcome = Outcome(step.title, True, time.monotonic() - started, observed=observed)
        outcomes.append(outcome)
        if outcome.ok:
            write(f"   ✓ behaved as described ({outcome.seconds:.1f} s)")
        else:
            write(f"   ✗ FAILED: {outcome.reason}")
            if step.essential:
                write("   (the remaining steps need this one; stopping here)")
                break
    return outcomes


def summary(
    outcomes: Sequence[Outcome], total_steps: int, write: Callable[[str], None] = _write
) -> int:
    """Print the verdict; 0 only when every step ran and behaved."""
    failed = [o for o in outcomes if not o.ok]
    write("")
    if not failed and len(outcomes) == total_steps:
        write(f"✓ demo complete: all {total_steps} steps behaved as described")
        return 0
    for outcome in failed:
        write(f"✗ step failed: {outcome.title}: {outcome.reason}")
    skipped = total_steps - len(outcomes)
    if skipped:
        write(f"✗ {skipped} step(s) not run")
    return 1
