"""Pure domain of the order service: money, order lines, lifecycle."""
