"""The catalog domain: products, prices, stock, reservations and their rules; no I/O."""
