"""bench_tracing's own pure parts: each configuration's environment, the JSON line it reads back,
and the ratios of medians."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_tracing.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tracing", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_configuration_sets_the_sdk_through_its_standard_environment(
    bench: ModuleType,
) -> None:
    shell = {
        "PATH": "/bin",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://elsewhere",
        "OTEL_SDK_DISABLED": "false",
    }
    on = bench.config_env("on", "http://127.0.0.1:9", shell)
    assert on == {
        "PATH": "/bin",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    no_exporter = bench.config_env("noexporter", "http://127.0.0.1:9", shell)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in no_exporter
    assert no_exporter["OTEL_TRACES_SAMPLER_ARG"] == "1.0"
    assert bench.config_env("off", "http://127.0.0.1:9", shell) == {
        "PATH": "/bin",
        "OTEL_SDK_DISABLED": "true",
    }
    with pytest.raises(ValueError, match="unknown"):
        bench.config_env("sometimes", "x", shell)


def test_the_last_json_line_is_the_result(bench: ModuleType) -> None:
    assert bench.last_json(
        'starting\n{"bench": "early"}\nround 1\n{"bench": "orders", "orders_per_s": 9.5}\n'
    ) == {
        "bench": "orders",
        "orders_per_s": 9.5,
    }
    with pytest.raises(ValueError, match="no JSON"):
        bench.last_json("crashed\n")


def test_ratios_are_of_medians_against_off(bench: ModuleType) -> None:
    figures = {"on": [80.0, 90.0, 1000.0], "off": [100.0, 100.0, 50.0], "noexporter": []}
    assert bench.ratio(figures, "on") == 0.9
    assert bench.ratio(figures, "noexporter") is None
    assert bench.ratio({"on": [1.0], "off": [0.0]}, "on") is None
    assert bench.ratio({"on": [2.0], "off": [4.0]}, "off", baseline="on") == 2.0


def test_the_span_cost_model_adds_each_spans_work_to_the_untraced_call(bench: ModuleType) -> None:
    costs = bench.span_costs.SpanCosts(server_span_us=30.0, client_span_us=20.0, encode_us=25.0)
    # A server span, one query span, two encodings.
    assert costs.per_call_us() == 30.0 + 20.0 + 2 * 25.0
    # Without a query span (a call answered without the database): the server span alone.
    assert costs.per_call_us(spans_per_call=1.0) == 30.0 + 25.0
    assert bench.span_costs.model_ratio(400.0, costs) == round(400 / 500, 3)


def test_span_costs_are_measured_with_the_services_sdk(bench: ModuleType) -> None:
    costs = bench.span_costs.measure(repeat=200)
    assert costs.server_span_us > 0
    assert costs.client_span_us > 0
    assert costs.encode_us > 0
    # Every span measured went through the processor and was encoded: a model ratio below 1.
    assert 0 < bench.span_costs.model_ratio(400.0, costs) < 1
