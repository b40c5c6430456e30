"""`make demo`: the narrated walkthrough of every pattern, through the gateway only."""
