"""The grpc.aio server of the user service: options, the UserService servicer behind the call
pipeline, grpc.health.v1 kept in step with the database, and reflection. Built and bound here,
started and stopped by the composition root (bootstrap.py), which hands in what it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from shop_common.auth import TokenVerifier
from shop_common.observability import RpcServerSpans
from shop_protos.user.v1 import user_pb2, user_pb2_grpc

from user_service.entrypoints.grpc.health import DatabaseHealth
from user_service.entrypoints.grpc.interceptors import CallPipeline, call_pipeline
from user_service.entrypoints.grpc.servicer import UserServicer
from user_service.service_layer.ports import UpdateFeed
from user_service.service_layer.users import UserService
from user_service.settings import Settings


def grpc_options(settings: Settings) -> list[tuple[str, int]]:
    """Keepalive and message-size options (as in the seed's server)."""
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
    ]


@dataclass
class GrpcServer:
    """A bound server and its health reporter; `grace` is how long stopping it lets calls in
    flight finish (bootstrap starts and stops both, in its order)."""

    server: grpc.aio.Server
    address: str
    port: int
    pipeline: CallPipeline
    health: DatabaseHealth
    grace: float

    def calls_in_flight(self) -> int:
        """Calls being handled now (health checks included)."""
        return self.pipeline.in_flight


def build_server(
    settings: Settings,
    *,
    address: str,
    users: UserService,
    updates: UpdateFeed,
    verifier: TokenVerifier,
    ping: Callable[[], Awaitable[None]],
    unavailable: tuple[type[BaseException], ...],
    spans: RpcServerSpans | None = None,
) -> GrpcServer:
    """Wire the services into a grpc.aio server and bind `address` (port 0: any free port);
    `spans` (tracing on) gives each call its server span."""
    pipeline = call_pipeline(
        verifier,
        rate=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
        unavailable=unavailable,
        spans=spans,
    )
    server = grpc.aio.server(interceptors=[pipeline], options=grpc_options(settings))
    user_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(users, updates), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    port = server.add_insecure_port(address)
    db_health = DatabaseHealth(
        health_servicer,
        ping,
        interval=settings.health_check_interval,
        timeout=settings.health_check_timeout,
    )
    return GrpcServer(server, address, port, pipeline, db_health, settings.grace_period)
