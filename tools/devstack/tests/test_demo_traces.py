"""The demo's trace step, its pure parts: where the launcher says traces go, whether they reach the
demo's receiver, which trace is the order's and when it is whole, and the words when it cannot show it."""

from __future__ import annotations

from pathlib import Path

import pytest
from shop_devstack.demo.context import exports_to
from shop_devstack.demo.steps_traces import complete, find_trace, how_to_see_it
from shop_devstack.layout import StackConfig, traces_url
from shop_devstack.running import RunningSystem
from shop_devstack.traces import OtlpReceiver, ReceivedSpan

OURS, OTHER = "a" * 32, "b" * 32


def span(
    service: str, start: int, trace_id: str = OURS, kind: str = "internal", name: str = "x"
) -> ReceivedSpan:
    return ReceivedSpan(trace_id, f"{start:016x}", None, name, service, kind, start, start + 1)


@pytest.mark.parametrize(
    ("env", "extra", "url"),
    [
        ({}, {}, None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"},
            {},
            "http://127.0.0.1:4318/v1/traces",
        ),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, "http://127.0.0.1:9/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/t",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x",
            },
            {},
            "http://c:4318/t",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "TRUE"}, {}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}, {}, None),
    ],
)
def test_the_launcher_records_where_the_services_send_traces(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], extra: dict[str, str], url: str | None
) -> None:
    for key in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert traces_url(StackConfig(extra_env=extra)) == url


async def test_exports_to_compares_the_recorded_url_with_the_receiver() -> None:
    async with OtlpReceiver() as receiver:
        port = receiver.port

        def system(url: str | None) -> RunningSystem:
            return RunningSystem("http://gw", None, Path("."), state={"traces_url": url})

        assert exports_to(system(f"http://127.0.0.1:{port}/v1/traces"), receiver)
        assert exports_to(system(f"http://localhost:{port}/v1/traces"), receiver)
        assert not exports_to(system("http://127.0.0.1:1/v1/traces"), receiver)
        assert not exports_to(system(None), receiver)
        assert not exports_to(system(f"http://127.0.0.1:{port}/v1/traces"), None)


def test_the_order_trace_is_ours_else_the_gateways_first_post_after_we_sent() -> None:
    post = "POST /api/orders"
    assert find_trace([span("gateway", 5, OTHER), span("gateway", 9)], OURS, 0) == OURS
    spans = [
        span("gateway", 1, "c" * 32, "server", post),  # before we sent ours
        span("gateway", 20, OTHER, "server", post),
        span("gateway", 30, "d" * 32, "server", post),
        span("gateway", 15, "e" * 32, "server", "GET /api/users/{id}"),
    ]
    assert find_trace(spans, "f" * 32, sent_ns=10) == OTHER
    assert find_trace([], OURS, 0) is None


def test_the_trace_is_whole_once_the_order_service_consumed_after_the_payment() -> None:
    start = [span("gateway", 1), span("order-service", 2), span("payment-service", 5)]
    assert not complete(start)
    assert complete([*start, span("order-service", 7)])
    assert not complete(
        [span("order-service", 2), span("payment-service", 5), span("order-service", 7)]
    )


def test_without_the_demo_receiver_the_step_says_why_and_how() -> None:
    unset = how_to_see_it(RunningSystem("http://gw", None, Path("."), state={"traces_url": None}))
    assert "started without tracing" in unset[0]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 make up" in unset[1]
    assert "GetUser" in unset[2] and "PAID" in unset[2]
    elsewhere = how_to_see_it(
        RunningSystem("http://gw", None, Path("."), state={"traces_url": "http://j:4318/v1/traces"})
    )
    assert "sends its traces to http://j:4318/v1/traces" in elsewhere[0]
