"""The payment domain: payments (charges and refunds), their kinds, statuses and rules; no I/O."""
