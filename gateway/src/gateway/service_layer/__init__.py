"""The gateway's use cases, over Protocols its adapters implement (and the unit tests fake).

The gateway has no database and no unit of work: its service layer is the part of the request
pipeline that decides something beyond one function of the domain. rate_limits (a route's limit
and its fail mode when the store is down), cache_step (lookup, conditional answer, fetch, store,
evict a user's entries), login (throttle → authenticate → count the verdict → sign). The
pipeline itself (gateway.entrypoints.pipeline) is the ASGI orchestration of these steps: it
stays an entrypoint because it speaks raw ASGI on the hot path.
"""
