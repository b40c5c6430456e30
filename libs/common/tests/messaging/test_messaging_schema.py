"""The committed JSON Schema of the events matches the models, and real envelopes validate."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import jsonschema
from shop_common.messaging import OrderCreated, OrderItem, new_event
from shop_common.messaging.schema import events_schema, render

COMMITTED = Path(__file__).resolve().parents[4] / "docs" / "events" / "events.schema.json"


def test_committed_schema_is_not_stale() -> None:
    assert COMMITTED.read_text() == render(), (
        "docs/events/events.schema.json is stale: run `uv run python -m shop_common.messaging.schema`"
    )


def test_a_real_envelope_and_its_payload_validate_against_the_schema() -> None:
    schema = events_schema()
    event = new_event(
        "order.created",
        OrderCreated(
            order_id=uuid.uuid4(),
            user_id=3,
            items=[OrderItem(sku="A", quantity=1, unit_price=Decimal("2.50"))],
            total=Decimal("2.50"),
            currency="EUR",
        ),
    )
    document = json.loads(event.to_json())
    jsonschema.validate(document, schema)
    payload_schema = {
        "$ref": schema["x-payload-by-event-type"]["order.created"],
        "$defs": schema["$defs"],
    }
    jsonschema.validate(document["payload"], payload_schema)
    document["payload"]["total"] = 2.5  # a float total violates the string money contract
    try:
        jsonschema.validate(document["payload"], payload_schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("a float amount passed the schema")
