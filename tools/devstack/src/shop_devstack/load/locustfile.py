"""Simulated shoppers: log in, browse their profile and orders, browse the catalog, and order what
they looked at (sku and quantity: the shop prices it), through the gateway.

Accounts come from LOAD_ACCOUNTS_FILE (JSON list of {id, email, password}), created beforehand
by `python -m shop_devstack.load`; each simulated user takes the next one.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from typing import Any

from locust import FastHttpUser, between, task

_ACCOUNTS: list[dict[str, Any]] = json.loads(open(os.environ["LOAD_ACCOUNTS_FILE"]).read())  # noqa: SIM115
_NEXT = itertools.cycle(_ACCOUNTS)
LOGIN_ATTEMPTS = 5
FALLBACK_SKU = "BOOK-001"  # a seed product, ordered if a catalog page came back empty
CATEGORIES = ("books", "clothing", "electronics", "garden", "home", "kitchen", "outdoors", "toys")


class Shopper(FastHttpUser):
    """One shopper session."""

    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        """Log in with a password (the user service checks it over gRPC); a busy answer is
        retried after its Retry-After, as a real client would, and counted as a failure."""
        self.account = next(_NEXT)
        self.order_ids: list[str] = []
        self.headers: dict[str, str] = {}
        form = {
            "grant_type": "password",
            "username": self.account["email"],
            "password": self.account["password"],
        }
        for attempt in range(LOGIN_ATTEMPTS):
            with self.client.post(
                "/auth/token", data=form, name="POST /auth/token", catch_response=True
            ) as response:
                if response.status_code == 200:
                    self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
                    return
                response.failure(f"login {response.status_code}")
                if response.status_code not in (429, 503, 504):
                    return
                retry_after = float(response.headers.get("Retry-After") or 1)
            # Exponential backoff with full jitter, so a login storm thins out instead of
            # returning in lockstep (gevent-patched sleep: yields to the other users).
            time.sleep(random.uniform(0, min(retry_after * 2**attempt, 10.0)))

    @task(4)
    def view_profile(self) -> None:
        """GET my user (served from the gateway's response cache after the first time)."""
        self.client.get(
            f"/api/users/{self.account['id']}", headers=self.headers, name="GET /api/users/{id}"
        )

    @task(2)
    def list_orders(self) -> None:
        """GET my orders."""
        self.client.get("/api/orders", headers=self.headers, name="GET /api/orders")

    def browse(self) -> str:
        """GET a catalog page of a random category (public, cached at the gateway), then one of
        its products; the sku the shopper will order."""
        category = random.choice(CATEGORIES)
        with self.client.get(
            f"/api/products?category={category}",
            name="GET /api/products?category",
            catch_response=True,
        ) as page:
            items = page.json().get("items", []) if page.status_code == 200 else []
            if page.status_code != 200:
                page.failure(f"catalog {page.status_code}")
        sku = str(random.choice(items)["sku"]) if items else FALLBACK_SKU
        self.client.get(f"/api/products/{sku}", name="GET /api/products/{sku}")
        return sku

    @task(2)
    def browse_catalog(self) -> None:
        """Look around without buying."""
        self.browse()

    @task(2)
    def place_order(self) -> None:
        """Browse the catalog, then POST an order of what was seen with an Idempotency-Key."""
        order = {"items": [{"sku": self.browse(), "quantity": random.randint(1, 2)}]}
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            "/api/orders", json=order, headers=headers, name="POST /api/orders", catch_response=True
        ) as response:
            if response.status_code in (200, 201, 202):
                self.order_ids.append(response.json()["id"])
            else:
                response.failure(f"order {response.status_code}")

    @task(2)
    def view_order(self) -> None:
        """GET one of my orders (its status moves PENDING → PAID)."""
        if self.order_ids:
            self.client.get(
                f"/api/orders/{self.order_ids[-1]}",
                headers=self.headers,
                name="GET /api/orders/{id}",
            )
