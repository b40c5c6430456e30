"""What tracing costs: bench_orders and bench_user with tracing on, with no exporter, and off.

Three configurations of the services' OpenTelemetry SDK, set through its standard environment:
  on          sampling every trace (OTEL_TRACES_SAMPLER=parentbased_traceidratio, ratio 1.0) and
              exporting over OTLP/HTTP to a receiver this benchmark runs (it counts the spans);
  noexporter  the same sampler, no OTEL_EXPORTER_OTLP_ENDPOINT: tracing set up, nothing sent;
  off         OTEL_SDK_DISABLED=true.
Each benchmark runs as its own process, in the order A B C A B C ... (bench_orders first, then
bench_user), so that drift in the machine's load hits every configuration alike; a configuration's
figure is the median of its runs. The ratios are orders/s and GetUser RPS against `off`; the
servers' CPU per call/order is printed beside them (it moves less with other load than rates do).
Targets (issue 14): on/off >= 0.85 for both, noexporter/off >= 0.98.

Ends with one JSON line: {"bench": "tracing", "orders_ratio_on_off": ..., "user_get_ratio_on_off":
..., "orders_ratio_noexporter_off": ..., ...}.
    uv run --all-packages python bench/bench_tracing.py [--repeats 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shop_devstack.traces.background import BackgroundReceiver

sys.path.insert(0, str(Path(__file__).resolve().parent))
import span_costs  # bench/span_costs.py, beside this script

BENCH = Path(__file__).resolve().parent
CONFIGS = ("on", "noexporter", "off")
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.0"}


def config_env(config: str, endpoint: str, base: dict[str, str]) -> dict[str, str]:
    """The benchmark process's environment (its services inherit it) for one configuration;
    whatever OTEL_* the caller's shell had is dropped first."""
    env = {k: v for k, v in base.items() if not k.startswith("OTEL_")}
    if config == "on":
        return {**env, **SAMPLED, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    if config == "noexporter":
        return {**env, **SAMPLED}
    if config == "off":
        return {**env, "OTEL_SDK_DISABLED": "true"}
    raise ValueError(f"unknown configuration {config!r}")


def last_json(output: str) -> dict[str, Any]:
    """The JSON line a benchmark ends with."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise ValueError("the benchmark printed no JSON line")


def ratio(figures: dict[str, list[float]], config: str, baseline: str = "off") -> float | None:
    """Median of `config`'s runs over the median of `baseline`'s (None without both)."""
    if not figures.get(config) or not figures.get(baseline):
        return None
    base = statistics.median(figures[baseline])
    return round(statistics.median(figures[config]) / base, 3) if base else None


def run_bench(script: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run bench/<script> with env; its output goes on to ours, its JSON line comes back."""
    process = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in process.stdout.splitlines():
        print(f"    {line}", flush=True)
    if process.returncode != 0:
        print(process.stderr[-3000:], file=sys.stderr, flush=True)
        raise SystemExit(f"{script} failed with exit code {process.returncode}")
    return last_json(process.stdout)


def explain_user_get(user_cpu: dict[str, list[float]]) -> dict[str, float | None]:
    """Print what the SDK's per-span work predicts for GetUser (bench/span_costs.py) beside what
    the runs measured, both as shares of an untraced call's server CPU; return them for the JSON."""
    costs = span_costs.measure()
    off = statistics.median(user_cpu["off"]) if user_cpu.get("off") else 0.0
    on = statistics.median(user_cpu["on"]) if user_cpu.get("on") else 0.0
    if not off:
        return {"user_get_model_ratio": None, "user_get_span_share": None}
    share = round(costs.per_call_us() / off, 3)
    print(
        "GetUser, per call, as shares of its untraced server CPU: "
        f"server span {costs.server_span_us / off:.3f}, query span {costs.client_span_us / off:.3f}, "
        f"OTLP encoding {costs.encode_us / off:.3f} per span; two spans in all {share:.3f} "
        f"(model on/off ratio {span_costs.model_ratio(off, costs)}); measured extra server CPU "
        f"{(on - off) / off:.3f}",
        flush=True,
    )
    return {
        "user_get_model_ratio": span_costs.model_ratio(off, costs),
        "user_get_span_share": share,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    args = parser.parse_args()
    orders_args = ["--duration", "5" if args.quick else "12", "--warmup", "2"]
    orders_args += ["--ceiling-messages", "500"]
    user_args = ["--quick"] if args.quick else []
    orders: dict[str, list[float]] = {c: [] for c in CONFIGS}
    orders_cpu: dict[str, list[float]] = {c: [] for c in CONFIGS}
    user_get: dict[str, list[float]] = {c: [] for c in CONFIGS}
    user_cpu: dict[str, list[float]] = {c: [] for c in CONFIGS}
    spans: dict[str, int] = dict.fromkeys(CONFIGS, 0)
    started = time.perf_counter()
    with BackgroundReceiver(keep_spans=False) as receiver:
        for repeat in range(1, args.repeats + 1):
            for script, figures, cpu, bench_args, rate, cpu_key in (
                (
                    "bench_orders.py",
                    orders,
                    orders_cpu,
                    orders_args,
                    "orders_per_s",
                    "cpu_ms_per_order_total",
                ),
                ("bench_user.py", user_get, user_cpu, user_args, "rps", "server_cpu_us_per_call"),
            ):
                for config in CONFIGS:
                    print(f"== {repeat}/{args.repeats} {script} tracing {config}", flush=True)
                    before = receiver.spans_received
                    env = config_env(config, receiver.endpoint, dict(os.environ))
                    result = run_bench(script, bench_args, env)
                    spans[config] += receiver.spans_received - before
                    figures[config].append(float(result[rate]))
                    cpu[config].append(float(result.get(cpu_key) or 0.0))
                    print(f"   {rate}={result[rate]} {cpu_key}={result.get(cpu_key)}", flush=True)
    for name, figures, cpu in (
        ("orders/s", orders, orders_cpu),
        ("GetUser RPS", user_get, user_cpu),
    ):
        for config in CONFIGS:
            print(f"{name:12s} {config:10s} runs={figures[config]} cpu={cpu[config]}", flush=True)
    print(f"spans received: {spans}; {time.perf_counter() - started:.0f} s in all", flush=True)
    model = explain_user_get(user_cpu)
    if not spans["on"]:
        print(
            "note: no span arrived with tracing on: the services do not trace (yet), so the "
            "ratios measure the noise only",
            flush=True,
        )
    print(
        json.dumps(
            {
                "bench": "tracing",
                "orders_ratio_on_off": ratio(orders, "on"),
                "user_get_ratio_on_off": ratio(user_get, "on"),
                "orders_ratio_noexporter_off": ratio(orders, "noexporter"),
                "user_get_ratio_noexporter_off": ratio(user_get, "noexporter"),
                "orders_cpu_ratio_off_on": ratio(orders_cpu, "off", baseline="on"),
                "user_get_cpu_ratio_off_on": ratio(user_cpu, "off", baseline="on"),
                "spans_received_on": spans["on"],
                **model,
                "repeats": args.repeats,
                "targets": {"on_off": 0.85, "noexporter_off": 0.98},
            }
        )
    )


if __name__ == "__main__":
    main()
