"""Pure domain of the order service: money, order lines, the order state machine, listing."""
