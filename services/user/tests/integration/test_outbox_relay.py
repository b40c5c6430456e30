"""Every user change reaches the `users` exchange through the outbox relay, in order."""

from __future__ import annotations

import json

import aio_pika
import grpc
import pytest
from shop_protos.user.v1 import user_pb2, user_pb2_grpc

from .conftest import StartServer

pytestmark = pytest.mark.infra


async def test_user_changes_are_published_to_the_users_exchange(
    amqp_vhost_url: str, start_server: StartServer, admin_token: str
) -> None:
    # amqp_vhost_url first: the vhost is set up before the server and removed after it stops.
    server = await start_server(amqp_url=amqp_vhost_url, outbox_relay_enabled=True)
    metadata = (("authorization", f"Bearer {admin_token}"),)
    connection = await aio_pika.connect(amqp_vhost_url)
    async with connection:
        channel = await connection.channel()
        # The server declared the topology on start: order.user-changes is bound to `users`.
        queue = await channel.get_queue("order.user-changes", ensure=True)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            stub = user_pb2_grpc.UserServiceStub(ch)
            created = await stub.CreateUser(
                user_pb2.CreateUserRequest(
                    email="relay@example.com", name="Relay", password="pw-123456"
                ),
                metadata=metadata,
            )
            user = created.user
            user.name = "Relayed"
            await stub.UpdateUser(
                user_pb2.UpdateUserRequest(user=user, update_mask={"paths": ["name"]}),
                metadata=metadata,
            )
            await stub.DeleteUser(user_pb2.DeleteUserRequest(id=user.id), metadata=metadata)

        received: list[dict[str, object]] = []
        async with queue.iterator(timeout=15) as messages:
            async for message in messages:
                async with message.process():
                    envelope = json.loads(message.body)
                    assert message.message_id == envelope["event_id"]
                    received.append(envelope)
                if len(received) == 3:
                    break
    assert [e["event_type"] for e in received] == ["user.created", "user.updated", "user.deleted"]
    assert all(e["payload"]["user_id"] == user.id for e in received)
    assert received[1]["payload"]["name"] == "Relayed"
