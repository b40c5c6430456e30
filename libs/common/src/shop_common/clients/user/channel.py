"""The channel's target and service config: round robin, retries on UNAVAILABLE (unary only)."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence

SERVICE = "shop.user.v1.UserService"


def service_config(max_attempts: int) -> str:
    """The channel's service config: round_robin, retries on UNAVAILABLE (unary methods)."""
    # Unary calls only: a retried stream could replay messages the caller already saw.
    unary = ["GetUser", "CreateUser", "UpdateUser", "DeleteUser", "Authenticate"]
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [{"service": SERVICE, "method": m} for m in unary],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


def target_for(addresses: Sequence[str]) -> str:
    """A gRPC target for round robin over host:port addresses.

    One address → `dns:///host:port` (every A record is balanced); several → an `ipv4:` list,
    names resolved once here (at start-up, e.g. `user-1:50051,user-2:50051` in compose).
    """
    if not addresses:
        raise ValueError("at least one user service address is needed")
    if len(addresses) == 1 and not _is_ipv4(addresses[0].rsplit(":", 1)[0]):
        return f"dns:///{addresses[0]}"
    resolved = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"address {address!r} must be host:port")
        ip = host if _is_ipv4(host) else socket.gethostbyname(host)
        resolved.append(f"{ip}:{port}")
    return "ipv4:" + ",".join(resolved)


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)
