"""The gateway's pure logic: no I/O, no web framework, no Redis, no broker, no HTTP client.

routes (the route table model and matching), paths (the canonical path), forwarding (who the
client is behind trusted proxies), headers (what goes upstream), redirects (Location made
public), access (token and roles per route), bounds (request-size defaults), cache_rules
(cache keys and Cache-Control rules), rate_limit (the decision and its headers),
login_throttle (the backoff policy and the throttle's answers), replies (a reply on its way
out) and errors (the failures the pipeline maps to statuses).
"""
