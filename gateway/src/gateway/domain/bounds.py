"""The default bounds on one request (settings override them; the middleware enforcing them is
gateway.entrypoints.bounds)."""

from __future__ import annotations

# Bounds on what one request may make the gateway hold and forward (the front door's share of
# OWASP API4): nginx's defaults are of the same order (8 KiB request line, 100 header fields in
# Apache's LimitRequestFields, 60 s client_body_timeout between reads).
MAX_TARGET_BYTES = 8_192  # path + query → 414
MAX_HEADER_FIELDS = 100  # → 431
MAX_HEADER_BYTES = 32_768  # names + values of every field → 431
BODY_IDLE_SECONDS = 10.0  # longest wait for the next part of a request body → 408
BODY_TOTAL_SECONDS = 60.0  # longest time the whole body may take → 408
