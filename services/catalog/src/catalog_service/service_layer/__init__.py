"""The catalog's use cases, over a unit of work and the ports they declare."""
