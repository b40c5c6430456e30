"""Order service: orders, their lifecycle and the payment saga."""
