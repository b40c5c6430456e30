"""Every demo step, as an assertion, through the gateway of the launched system."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from shop_devstack.client import ShopClient
from shop_devstack.demo.context import DemoContext, exports_to
from shop_devstack.demo.narration import Step, run_steps
from shop_devstack.demo.steps import STEPS
from shop_devstack.running import RunningSystem
from shop_devstack.traces import OtlpReceiver

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]
# These two stop an instance and reach the broker: the launcher does both, and so does a compose
# stack named by SHOP_E2E_COMPOSE_PROJECT (shop_devstack.compose_control); any other external
# system cannot, so they are `launcher` tests unless that project is given.
NEEDS_CONTROL = {"Stop one user-service instance", "A poison message, the DLQ and a replay"}
COMPOSE = bool(os.environ.get("SHOP_E2E_COMPOSE_PROJECT"))


@pytest_asyncio.fixture
async def context(
    system: RunningSystem, trace_receiver: OtlpReceiver | None
) -> AsyncIterator[DemoContext]:
    client = ShopClient(system.gateway_url)
    # The trace step draws a real trace when the system sends its traces to the session's receiver
    # (the launched system does; tests/conftest.py), and explains how to get one otherwise.
    traces = trace_receiver if exports_to(system, trace_receiver) else None
    yield DemoContext(client, system, traces=traces)
    await client.close()


def _param(step: Step[DemoContext]) -> object:
    marks = [pytest.mark.launcher] if step.title in NEEDS_CONTROL and not COMPOSE else []
    return pytest.param(step, id=step.title.lower().replace(" ", "-"), marks=marks)


@pytest.mark.parametrize("step", [_param(s) for s in STEPS])
async def test_demo_step_behaves_as_narrated(step: Step[DemoContext], context: DemoContext) -> None:
    lines: list[str] = []
    [outcome] = await run_steps([step], context, write=lines.append)
    assert outcome.ok, f"{step.title}: {outcome.reason}\n" + "\n".join(lines)
