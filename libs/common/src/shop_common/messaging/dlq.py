"""List and replay dead letters: `python -m shop_common.messaging.dlq list|replay <queue>`.

Listing browses without consuming (messages are fetched unacked and returned on channel close).
Replay republishes a dead letter, with confirm, to its original exchange and routing key (or
straight to the queue that failed it, --to-queue), with its attempt counter reset, then acks it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shop_common.messaging.connection import connect
from shop_common.messaging.outcomes import (
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    FAILED_QUEUE_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REPLAYED_HEADER,
)
from shop_common.messaging.publisher import Publisher, headers_of
from shop_common.observability.propagation import continued_from, span_event
from shop_common.settings import ServiceSettings


@dataclass(frozen=True)
class DeadLetter:
    """One message in a DLQ, as the operator sees it."""

    message_id: str | None
    event_type: str | None
    original_exchange: str
    original_routing_key: str
    failed_queue: str | None
    attempts: int
    error: str | None
    body: str


def dlq_name(queue: str) -> str:
    """Accept a work queue or its DLQ name."""
    return queue if queue.endswith(".dlq") else f"{queue}.dlq"


def _origin(message: AbstractIncomingMessage) -> tuple[str, str, str | None]:
    """Original exchange, routing key and failed queue: our headers, else the broker's x-death."""
    headers = message.headers or {}
    if ORIGINAL_EXCHANGE_HEADER in headers:
        failed = headers.get(FAILED_QUEUE_HEADER)
        return (
            str(headers[ORIGINAL_EXCHANGE_HEADER]),
            str(headers.get(ORIGINAL_ROUTING_KEY_HEADER, "")),
            str(failed) if failed is not None else None,
        )
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], dict):
        first = deaths[-1]  # the oldest death: where the message entered the system
        keys = first.get("routing-keys")
        key = keys[0] if isinstance(keys, list) and keys else ""
        return str(first.get("exchange", "")), str(key), str(first.get("queue"))
    return message.exchange or "", message.routing_key or "", None


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    """The operator's view of a dead-lettered message."""
    exchange, routing_key, failed = _origin(message)
    headers = message.headers or {}
    error = headers.get(ERROR_HEADER)
    deaths = headers.get("x-death")
    if error is None and isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        error = f"dead-lettered by the broker: {deaths[0].get('reason')!s}"
    return DeadLetter(
        message_id=message.message_id,
        event_type=message.type,
        original_exchange=exchange,
        original_routing_key=routing_key,
        failed_queue=failed,
        attempts=int(str(headers.get(ATTEMPTS_HEADER, 0))),
        error=error.decode()
        if isinstance(error, bytes)
        else (None if error is None else str(error)),
        body=message.body.decode(errors="replace"),
    )


async def _drain(
    connection: AbstractRobustConnection, queue: str, limit: int
) -> tuple[aio_pika.abc.AbstractChannel, list[AbstractIncomingMessage]]:
    channel = await connection.channel()
    dlq = await channel.declare_queue(dlq_name(queue), passive=True)
    messages: list[AbstractIncomingMessage] = []
    while len(messages) < limit:
        message = await dlq.get(no_ack=False, fail=False)
        if message is None:
            break
        messages.append(message)
    return channel, messages


async def list_dead_letters(
    connection: AbstractRobustConnection, queue: str, *, limit: int = 100
) -> list[DeadLetter]:
    """Up to limit dead letters of queue, left in place."""
    channel, messages = await _drain(connection, queue, limit)
    try:
        return [describe(message) for message in messages]
    finally:
        await channel.close()  # unacked messages go back to the DLQ


async def replay(
    connection: AbstractRobustConnection,
    queue: str,
    *,
    ids: Collection[str] | None = None,
    to_queue: bool = False,
    limit: int = 10_000,
) -> list[str]:
    """Republish the selected dead letters (all when ids is None); returns the replayed ids."""
    publisher = Publisher(connection)
    channel, messages = await _drain(connection, queue, limit)
    replayed: list[str] = []
    try:
        for message in messages:
            if ids is not None and message.message_id not in ids:
                continue
            exchange, routing_key, failed = _origin(message)
            if to_queue and failed:
                exchange, routing_key = "", failed
            headers = headers_of(message.headers)
            for stale in (ATTEMPTS_HEADER, ERROR_HEADER, ORIGINAL_EXCHANGE_HEADER):
                headers.pop(stale, None)
            headers.pop(ORIGINAL_ROUTING_KEY_HEADER, None)
            headers.pop("x-death", None)
            headers[REPLAYED_HEADER] = int(headers.get(REPLAYED_HEADER, 0)) + 1
            copy = aio_pika.Message(
                body=message.body,
                headers=dict(headers),
                content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                timestamp=message.timestamp,
                type=message.type,
                priority=message.priority,
            )
            span_event("message.replayed", {"queue": queue, "message_id": copy.message_id or ""})
            with continued_from(headers):  # the replay joins the dead letter's trace
                await publisher.publish_message(exchange, routing_key, copy)
            await message.ack()  # only after the confirm: a failed replay stays in the DLQ
            replayed.append(message.message_id or "")
    finally:
        await channel.close()
        await publisher.close()
    return replayed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shop_common.messaging.dlq")
    parser.add_argument("--url", default=None, help="AMQP URL (default: AMQP_URL from env)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show dead letters (JSON lines)")
    listing.add_argument("queue", help="work queue or its .dlq")
    listing.add_argument("--limit", type=int, default=100)
    replaying = commands.add_parser("replay", help="republish dead letters")
    replaying.add_argument("queue", help="work queue or its .dlq")
    replaying.add_argument("--id", action="append", dest="ids", help="message id (repeatable)")
    replaying.add_argument("--all", action="store_true", help="replay every dead letter")
    replaying.add_argument("--to-queue", action="store_true", help="only to the failed queue")
    return parser


async def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "replay" and not args.ids and not args.all:
        sys.stderr.write("replay needs --id ID (repeatable) or --all\n")
        return 2
    url = args.url or ServiceSettings().amqp_url
    connection = await connect(url, attempts=3)
    try:
        return await _run(connection, args)
    except aiormq.exceptions.ChannelNotFoundEntity as error:
        sys.stderr.write(f"no such queue: {dlq_name(args.queue)} ({error})\n")
        return 1
    finally:
        await connection.close()


async def _run(connection: AbstractRobustConnection, args: argparse.Namespace) -> int:
    if args.command == "list":
        for letter in await list_dead_letters(connection, args.queue, limit=args.limit):
            sys.stdout.write(json.dumps(asdict(letter)) + "\n")
    else:
        ids = None if args.all else args.ids
        done = await replay(connection, args.queue, ids=ids, to_queue=args.to_queue)
        sys.stdout.write(json.dumps({"replayed": done}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
