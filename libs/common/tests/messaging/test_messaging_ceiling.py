"""The ceiling helper moves every message through the broker and cleans up after itself."""

from __future__ import annotations

import subprocess
from urllib.parse import unquote, urlsplit

import pytest
from shop_common.messaging.ceiling import measure_ceiling

pytestmark = pytest.mark.infra


def queues_of(amqp_vhost_url: str) -> list[str]:
    vhost = unquote(urlsplit(amqp_vhost_url).path.lstrip("/"))
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return [line for line in listing.stdout.splitlines() if line and line != "name"]


@pytest.mark.parametrize("consume", [True, False])
async def test_ceiling_counts_every_message_and_leaves_no_queue(
    amqp_vhost_url: str, consume: bool
) -> None:
    ceiling = await measure_ceiling(
        amqp_vhost_url, messages=300, size_bytes=64, in_flight=20, consume=consume
    )
    assert ceiling.messages == 300
    assert ceiling.msgs_per_s > 0
    assert queues_of(amqp_vhost_url) == []
