"""The seed catalog: 50 products in 8 categories, each with its stock (idempotent inserts).

Skus are `<CAT>-<NNN>`; prices are derived from the position (so every run seeds the same
catalog); stock is 100 per sku, except a few low (5) and out-of-stock (0) ones for the demo.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEED: dict[str, tuple[str, list[str]]] = {
    "books": (
        "BOOK",
        [
            "Field Guide to Birds",
            "Bread Baking Basics",
            "Practical Python",
            "Atlas of Rivers",
            "Night Sky Almanac",
            "Poems for Mornings",
        ],
    ),
    "clothing": (
        "CLTH",
        [
            "Merino Beanie",
            "Rain Shell Jacket",
            "Linen Shirt",
            "Wool Socks (pair)",
            "Canvas Apron",
            "Fleece Vest",
        ],
    ),
    "electronics": (
        "ELEC",
        [
            "USB-C Charger 65W",
            "Noise-Cancelling Headphones",
            "Mechanical Keyboard",
            "E-Ink Reader",
            "Bluetooth Speaker",
            "Smart Plug",
            "Webcam HD",
        ],
    ),
    "garden": (
        "GRDN",
        [
            "Pruning Shears",
            "Watering Can 10L",
            "Herb Seed Kit",
            "Compost Bin",
            "Garden Kneeler",
            "Bird Feeder",
        ],
    ),
    "home": (
        "HOME",
        [
            "Linen Throw",
            "Ceramic Vase",
            "Desk Lamp",
            "Scented Candle",
            "Wall Clock",
            "Bamboo Bath Mat",
            "Photo Frame",
        ],
    ),
    "kitchen": (
        "KTCH",
        [
            "Chef's Knife",
            "Cast Iron Skillet",
            "Pour-Over Coffee Set",
            "Bamboo Cutting Board",
            "Espresso Cups (4)",
            "Spice Rack",
        ],
    ),
    "outdoors": (
        "OUTD",
        [
            "Trail Backpack 30L",
            "Camping Stove",
            "Headlamp",
            "Insulated Bottle",
            "Hammock",
            "Trekking Poles",
        ],
    ),
    "toys": (
        "TOYS",
        [
            "Wooden Train Set",
            "Puzzle 1000 Pieces",
            "Kite",
            "Building Blocks",
            "Plush Fox",
            "Marble Run",
        ],
    ),
}
LOW_STOCK = {"ELEC-002", "OUTD-003"}
OUT_OF_STOCK = {"TOYS-006", "HOME-007"}


def seed_rows() -> list[dict[str, object]]:
    """The seed products with their stock, in sku order."""
    rows: list[dict[str, object]] = []
    position = 0
    for category, (prefix, names) in sorted(SEED.items()):
        for number, name in enumerate(names, start=1):
            position += 1
            sku = f"{prefix}-{number:03d}"
            price = Decimal(4 + (position * 37) % 190) + Decimal("0.99")
            stock = 0 if sku in OUT_OF_STOCK else 5 if sku in LOW_STOCK else 100
            rows.append(
                {
                    "sku": sku,
                    "name": name,
                    "description": f"{name}: a {category} staple of the reference shop.",
                    "category": category,
                    "price": price,
                    "currency": "EUR",
                    "stock": stock,
                }
            )
    return rows


def upgrade() -> None:
    bind = op.get_bind()
    for row in seed_rows():
        bind.execute(
            sa.text(
                "INSERT INTO products (sku, name, description, category, price, currency)"
                " VALUES (:sku, :name, :description, :category, :price, :currency)"
                " ON CONFLICT (sku) DO NOTHING"
            ),
            row,
        )
        bind.execute(
            sa.text(
                "INSERT INTO stock (sku, available) VALUES (:sku, :stock)"
                " ON CONFLICT (sku) DO NOTHING"
            ),
            row,
        )


def downgrade() -> None:
    skus = [str(row["sku"]) for row in seed_rows()]
    bind = op.get_bind()
    for table in ("product_views", "stock", "products"):
        bind.execute(sa.text(f"DELETE FROM {table} WHERE sku = ANY(:skus)"), {"skus": skus})  # noqa: S608
