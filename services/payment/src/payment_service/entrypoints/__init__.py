"""The payment service's edges: the HTTP API (http.py) and the order-event handlers (consumers.py)."""
