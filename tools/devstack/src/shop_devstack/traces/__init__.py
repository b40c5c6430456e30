"""Traces on one machine: an OTLP/HTTP receiver that keeps spans in memory, and a terminal waterfall."""

from shop_common.observability.otlp import BadPayload, ReceivedSpan

from shop_devstack.traces.receiver import OtlpReceiver
from shop_devstack.traces.waterfall import render_waterfall

__all__ = ["BadPayload", "OtlpReceiver", "ReceivedSpan", "render_waterfall"]
