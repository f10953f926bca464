"""Business rules applied to every recommendation, whatever model produced it."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.models import Product


@dataclass
class Constraints:
    """What the customer said in the chat, and what must not be shown."""

    category: str | None = None  # a word of the category path, case-insensitive ("camping")
    max_price: float | None = None
    like: str | None = None  # "more like this": a product id
    exclude: set[str] = field(default_factory=set)


def allowed(product: Product, c: Constraints, blocked: set[str]) -> bool:
    """In stock, not blocked (already bought, dismissed, seen), within the customer's limits."""
    if not product.in_stock or product.id in blocked or product.id in c.exclude:
        return False
    if c.max_price is not None and product.price > c.max_price:
        return False
    return c.category is None or c.category.lower() in product.category.lower()
