"""Container health probe (stdlib + grpcio only): exit 0 when the service is ready.

healthcheck.py http://127.0.0.1:8001/ready     -> GET answers 200
healthcheck.py grpc://127.0.0.1:50051          -> grpc.health.v1 Check("") is SERVING
"""

from __future__ import annotations

import sys
import urllib.request


def http_ok(url: str) -> bool:
    """True when GET url answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - fixed local URL
            return bool(response.status == 200)
    except OSError:
        return False


def grpc_serving(address: str) -> bool:
    """True when the gRPC health service reports SERVING for the whole server."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def main(target: str) -> int:
    """0 when healthy, 1 otherwise."""
    if target.startswith("grpc://"):
        return 0 if grpc_serving(target.removeprefix("grpc://")) else 1
    return 0 if http_ok(target) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
