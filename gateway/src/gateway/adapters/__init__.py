"""The gateway's I/O: what bootstrap builds and the entrypoints reach only through its App.

backends (calling a backend service over HTTP: breakers, balancing, retries; "upstream" in the
docs) over http_proxy (the one aiohttp session), rate_limit (the Redis sliding window),
response_cache (the Redis response store), login_throttle (+ login_throttle_local: the login
counters in Redis, or in memory while Redis is down), user_auth (the user service's
Authenticate), keys (the JWT signing and verifying keys).
"""
